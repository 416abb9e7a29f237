"""Property: a path in `@versions` or `@trash` is decided on what it resolves to.

Hypothesis builds trees with folders and files, deletions, several versions, and
live folders and files whose names are exactly (or almost) the names the views
give to versions and deleted items, then grants a staff user read on a random
set of folders. For every path the administrator sees in both views, the staff
user must see it exactly when the rights on the real path of the row it resolves
to (from the database's parent chain, not from any name) let them, and each
listing must hold exactly the visible children.
"""
import itertools

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from strongroom.appliance.db.models import Node
from strongroom.appliance.errors import Conflict, NotFound
from strongroom.auth import acl
from tests.support.sessions import admin_session, put, staff_session

FOLDERS = ["a", "a/b", "c", "c/d"]
FILES = ["f.txt", "a/g.txt", "a/b/h.txt", "c/i.txt"]
_count = itertools.count()

step = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(FILES)),
    st.tuples(st.just("delete"), st.sampled_from(FILES + FOLDERS)),
    st.tuples(st.just("lookalike"), st.sampled_from(FOLDERS + [""]), st.integers(0, 50),
              st.booleans(), st.booleans()),
)


def _apply(boss, client, op) -> None:
    kind, where = op[0], op[1]
    try:
        if kind == "put":
            for folder in FOLDERS:
                if where.startswith(folder + "/"):
                    _mkdir(boss, f"/{client}/{folder}")
            put(boss, f"/{client}/{where}", f"{where} {next(_count)}".encode())
        elif kind == "delete":
            boss.remove(f"/{client}/{where}", recursive=True)
        else:
            _lookalike(boss, client, *op[1:])
    except (NotFound, Conflict):
        pass   # the folder was deleted, or a name is taken: the step changes nothing


def _mkdir(boss, path) -> None:
    try:
        boss.stat(path)
    except NotFound:
        boss.mkdir(path)


def _lookalike(boss, client, folder, pick, as_folder, exact) -> None:
    """A live folder or file in `folder` named like some entry of a view."""
    names = [e.name for view in ("@trash", "@versions") for e in _walk(boss, f"/{client}/{view}")
             if e.name[:4].isdigit()]
    if not names:
        return
    name = names[pick % len(names)]
    if not exact:   # the same shape with another id: resolves to no view entry
        name = name.replace(" d", " d9", 1).replace(" v", " v9", 1)
    base = f"/{client}/{folder}".rstrip("/")
    if folder:
        _mkdir(boss, base)
    path = f"{base}/{name}"
    if as_folder:
        _mkdir(boss, path)
        put(boss, f"{path}/inside.txt", b"inside")
        boss.remove(f"{path}/inside.txt")
    else:
        put(boss, path, b"one")
        put(boss, path, b"two")


def _walk(session, path):
    """Every entry below `path`, depth first (a bounded tree: the views mirror it)."""
    for entry in session.list(path):
        yield entry
        if entry.is_dir:
            yield from _walk(session, entry.path)


def _real_path(s, node_id) -> tuple:
    """(path of the node from its parent chain, whether it is a folder)."""
    names = []
    node = s.get(Node, node_id)
    is_dir = node.is_dir
    while node.parent_id is not None:
        names.append(node.name)
        node = s.get(Node, node.parent_id)
    return tuple(reversed(names)), is_dir


@pytest.fixture
def sam(app):
    return staff_session(app)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=3, max_size=14),
       granted=st.lists(st.sampled_from(FOLDERS + [""]), max_size=2, unique=True))
def test_views_decide_on_the_rows_a_path_resolves_to(app, sam, steps, granted):
    client = f"c{next(_count)}"
    app.admin().add_client(client)
    boss = admin_session(app)
    for folder in ("a", "c"):
        boss.mkdir(f"/{client}/{folder}")
    for op in steps:
        _apply(boss, client, op)
    grants = []
    for folder in granted:
        try:
            app.admin().grant(f"/{client}/{folder}".rstrip("/"), login="sam", rights="read")
            grants.append(acl.Grant(tuple(p for p in folder.split("/") if p), "r"))
        except NotFound:
            pass  # the folder was deleted
    for view in ("@trash", "@versions"):
        _check_view(app, boss, sam, f"/{client}/{view}", grants)


def _check_view(app, boss, sam, root, grants) -> None:
    with app.db.read() as s:
        def visible(path):   # decided on what the path resolves to: a folder or a file
            return acl.visible(grants, *_real_path(s, boss.stat(path).node_id))

        for folder in [root] + [e.path for e in _walk(boss, root) if e.is_dir]:
            if not grants or (folder != root and not visible(folder)):
                with pytest.raises(NotFound):
                    sam.list(folder)
                continue
            everything = boss.list(folder)
            seen = {e.path: visible(e.path) for e in everything}
            assert {e.path for e in sam.list(folder)} == {p for p, v in seen.items() if v}
            for path in (p for p, v in seen.items() if not v):
                with pytest.raises(NotFound):
                    sam.stat(path)
