"""appliance.notify.lines.coalesce: what a batch of changes comes to, one line per file,
as a table of event sequences and the lines a reader should get."""
from itertools import count

import pytest

from strongroom.appliance.notify.lines import Event, coalesce

_ids = count(1)


def ev(action: str, path: str, old: str | None = None, *, actor: str = "sam",
       size: int | None = None, is_dir: bool = False, client: int = 1) -> Event:
    return Event(next(_ids), client, 0, is_dir, path, old, action, actor, None, "staff", size,
                 float(next(_ids)))


def summary(events) -> list[tuple]:
    return [(line.action, line.path, line.old_path) for line in coalesce(events)]


CASES = {
    "one upload": ([ev("added", "/a.pdf")], [("added", "/a.pdf", None)]),
    "five changes are one line": (
        [ev("changed", "/a.pdf") for _ in range(5)], [("changed", "/a.pdf", None)]),
    "added then changed is added": (
        [ev("added", "/a.pdf"), ev("changed", "/a.pdf")], [("added", "/a.pdf", None)]),
    "added then deleted is nothing": (
        [ev("added", "/a.pdf"), ev("deleted", "/a.pdf")], []),
    "an existing file deleted": ([ev("deleted", "/a.pdf")], [("deleted", "/a.pdf", None)]),
    "renamed": ([ev("renamed", "/b.pdf", "/a.pdf")], [("renamed", "/b.pdf", "/a.pdf")]),
    "renamed back is nothing": (
        [ev("renamed", "/b.pdf", "/a.pdf"), ev("renamed", "/a.pdf", "/b.pdf")], []),
    "added then renamed is added under the new name": (
        [ev("added", "/tmp1.pdf"), ev("renamed", "/a.pdf", "/tmp1.pdf")],
        [("added", "/a.pdf", None)]),
    "renamed twice keeps the first name": (
        [ev("renamed", "/b.pdf", "/a.pdf"), ev("renamed", "/c.pdf", "/b.pdf")],
        [("renamed", "/c.pdf", "/a.pdf")]),
    "renamed and changed": (
        [ev("renamed", "/b.pdf", "/a.pdf"), ev("changed", "/b.pdf")],
        [("changed", "/b.pdf", "/a.pdf")]),
    # Word: MOVE doc away to a litter name (outbox: deleted), the temp file onto doc
    # (outbox: added), the litter deleted (outbox: nothing)
    "Office: moved away, then a new file takes the name": (
        [ev("deleted", "/doc.docx"), ev("added", "/doc.docx")],
        [("changed", "/doc.docx", None)]),
    # vim: rename doc to doc~, write doc anew, remove doc~
    "vim: renamed to a stand-in, written anew, stand-in deleted": (
        [ev("renamed", "/doc.txt~", "/doc.txt"), ev("added", "/doc.txt"),
         ev("deleted", "/doc.txt~")],
        [("changed", "/doc.txt", None)]),
    "a file renamed onto a deleted name replaced it": (
        [ev("deleted", "/a.pdf"), ev("renamed", "/a.pdf", "/b.pdf")],
        [("changed", "/a.pdf", "/b.pdf")]),
    "a renamed file deleted is deleted under the name the reader knew": (
        [ev("renamed", "/b.pdf", "/a.pdf"), ev("deleted", "/b.pdf")],
        [("deleted", "/a.pdf", None)]),
    "a folder renamed takes its new files along": (
        [ev("added", "/f/x.pdf"), ev("renamed", "/g", "/f", is_dir=True)],
        [("renamed", "/g", "/f"), ("added", "/g/x.pdf", None)]),
    "a folder deleted takes its lines away": (
        [ev("added", "/f/x.pdf"), ev("changed", "/f/y.pdf"), ev("deleted", "/f", is_dir=True)],
        [("deleted", "/f", None)]),
    "same path in two trees: two lines": (
        [ev("added", "/a.pdf", client=1), ev("added", "/a.pdf", client=2)],
        [("added", "/a.pdf", None), ("added", "/a.pdf", None)]),
}


@pytest.mark.parametrize("events, lines", CASES.values(), ids=CASES.keys())
def test_coalesce(events, lines):
    assert summary(events) == lines


def test_a_line_has_the_last_size_every_actor_once_and_the_last_time():
    events = [ev("added", "/a.pdf", size=1, actor="sam"), ev("changed", "/a.pdf", size=5,
              actor="sue"), ev("changed", "/a.pdf", size=9, actor="sam")]
    [line] = coalesce(events)
    assert (line.size, line.actors, line.ts) == (9, ["sam", "sue"], events[-1].ts)


def test_events_are_taken_in_id_order_whatever_order_they_come_in():
    added, deleted = ev("added", "/a.pdf"), ev("deleted", "/a.pdf")
    assert summary([deleted, added]) == []
