"""What a batch of changes comes to, one line per file or folder: `coalesce`.

A file changed five times is one line; a file added and deleted again before anyone
heard of it is none; a file renamed back to its name is none. Saves that replace a
document through other names come to "changed": the document moved away (or deleted)
and a file then taking its name (Office, LibreOffice), or renamed to a stand-in that
is deleted once the new file is written (vim). A folder renamed takes the lines below
it along; a folder deleted takes them away. Pure: events in, lines out.
"""
from dataclasses import dataclass, field
from collections.abc import Iterable

ACTIONS = ("added", "changed", "deleted", "renamed")


@dataclass(frozen=True)
class Event:
    """A notify_events row (appliance.notify.outbox), as coalesce reads it."""
    id: int
    client_id: int
    node_id: int
    is_dir: bool
    path: str                 # inside the tree: "/folder/name"
    old_path: str | None      # a rename's source
    action: str
    actor: str
    actor_id: int | None
    actor_role: str
    size: int | None
    ts: float


@dataclass
class Line:
    """One file or folder of a batch: what came of it (`action`), where it is now
    (`path`), where it was before when it moved (`old_path`), its last size, who
    changed it (logins, first first) and when last."""
    client_id: int
    path: str
    action: str
    is_dir: bool
    size: int | None
    ts: float
    actors: list[str] = field(default_factory=list)
    old_path: str | None = None
    # whether the file existed before the batch (one added in it was never seen)
    existed: bool = True

    def touch(self, e: Event) -> None:
        self.ts = max(self.ts, e.ts)
        if e.size is not None:
            self.size = e.size
        if e.actor not in self.actors:
            self.actors.append(e.actor)


Key = tuple[int, str]


def coalesce(events: Iterable[Event]) -> list[Line]:
    """The lines of `events` (taken in id order), by tree and path."""
    state: dict[Key, Line] = {}
    for e in sorted(events, key=lambda e: e.id):
        if e.action == "added":
            _added(state, e)
        elif e.action == "changed":
            _changed(state, e)
        elif e.action == "deleted":
            _deleted(state, e)
        elif e.action == "renamed" and e.old_path is not None:
            _renamed(state, e, e.old_path)
    lines = [line for line in state.values()
             if not (line.action == "renamed" and line.old_path == line.path)]
    return sorted(lines, key=lambda line: (line.client_id, line.path))


def _new(e: Event, action: str, existed: bool, path: str | None = None) -> Line:
    line = Line(e.client_id, path or e.path, action, e.is_dir, e.size, e.ts, existed=existed)
    line.touch(e)
    return line


def _added(state: dict[Key, Line], e: Event) -> None:
    key = (e.client_id, e.path)
    line = state.get(key)
    if line is None:
        state[key] = _new(e, "added", existed=False)
        return
    if line.action == "deleted":      # a name deleted, then taken again: replaced
        line.action, line.is_dir = ("changed" if line.existed else "added"), e.is_dir
    elif line.action == "renamed":
        line.action = "changed"
    line.touch(e)


def _changed(state: dict[Key, Line], e: Event) -> None:
    key = (e.client_id, e.path)
    line = state.get(key)
    if line is None:
        state[key] = _new(e, "changed", existed=True)
        return
    if line.action != "added":
        line.action = "changed"
    line.touch(e)


def _deleted(state: dict[Key, Line], e: Event) -> None:
    key = (e.client_id, e.path)
    line = state.pop(key, None)
    if e.is_dir:
        _drop_below(state, e.client_id, e.path)
    if line is not None and not line.existed:
        return                        # added and deleted before anyone heard of it
    origin = (line.old_path if line is not None else None) or e.path
    there = state.get((e.client_id, origin))
    if origin != e.path and there is not None and there.action == "added":
        # a stand-in deleted once a new file took its old name (vim): that file changed
        there.action, there.existed = "changed", True
        there.touch(e)
        return
    gone = _new(e, "deleted", existed=True, path=origin)
    if line is not None:
        gone.actors = line.actors + [a for a in gone.actors if a not in line.actors]
    state[(e.client_id, origin)] = gone


def _renamed(state: dict[Key, Line], e: Event, old: str) -> None:
    line = state.pop((e.client_id, old), None)
    if line is None:
        line = _new(e, "renamed", existed=True, path=old)
        line.old_path = old
    elif line.action != "added" and line.old_path is None:
        line.old_path = old
    line.path = e.path
    line.touch(e)
    if e.is_dir:
        _move_below(state, e.client_id, old, e.path)
    there = state.get((e.client_id, e.path))
    if there is not None and there.action == "deleted":
        # renamed onto a name deleted before: that name's file was replaced
        line.action, line.existed = ("changed" if there.existed else line.action), True
    state[(e.client_id, e.path)] = line


def _below(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


def _drop_below(state: dict[Key, Line], client_id: int, folder: str) -> None:
    for key in [k for k in state if k[0] == client_id and _below(k[1], folder)]:
        del state[key]


def _move_below(state: dict[Key, Line], client_id: int, old: str, new: str) -> None:
    moved = [k for k in state if k[0] == client_id and _below(k[1], old)]
    for key in moved:
        line = state.pop(key)
        line.path = new.rstrip("/") + key[1][len(old.rstrip("/")):]
        state[(client_id, line.path)] = line
