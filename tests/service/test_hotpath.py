"""The hot path's contract (appliance.db.hotpath): its functions give one row type on the
DBAPI cursor and on a SQLAlchemy Connection, and mypy refuses ORM work inside it."""
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.appliance.db import hotpath, repo
from tests.support.sessions import client_session, put

ROOT = Path(__file__).resolve().parents[2]


def _rows(h, client_id: int) -> list:
    return [repo.client_info(h, "acme"), repo.client_info_by_id(h, client_id),
            repo.used_bytes(h, client_id), repo.walk_row(h, client_id, ()),
            repo.walk_row(h, client_id, ("docs",)), repo.walk_row(h, client_id, ("nope",)),
            repo.locate_rows(h, client_id, ("docs", "a.txt")),
            repo.locate_rows(h, client_id, ("docs", "missing")),
            repo.locate_rows(h, client_id, ("nope", "a.txt"))]


def test_fast_and_connection_give_the_same_rows(app):
    acme = client_session(app, "acme")
    acme.mkdir("/docs")
    put(acme, "/docs/a.txt", b"abc")
    with app.db.read() as s:
        client_id = repo.client_by_name(s, "acme").id
        through_connection = _rows(s.connection(), client_id)
    with app.db.fast_read() as h:
        through_cursor = _rows(h, client_id)
    assert through_cursor == through_connection
    folder, file, version = through_cursor[6]
    assert isinstance(file, hotpath.NodeRow) and isinstance(version, hotpath.VersionRow)
    assert (folder.name, folder.is_dir, file.name, file.is_dir) == ("docs", True, "a.txt", False)
    assert type(version.wrapped_key) is bytes and version.size == 3
    assert isinstance(through_cursor[0], hotpath.ClientRow)
    assert type(through_cursor[0].wrapped_key) is bytes
    assert through_cursor[7][1:] == (None, None) and through_cursor[8] == (None, None, None)


_SNIPPET = '''
from strongroom.appliance.db import repo
from strongroom.appliance.db.engine import Database
from strongroom.appliance.db.models import Node


def stat(db: Database) -> None:
    with db.fast_read() as h:
        repo.locate_rows(h, 1, ("a",))      # fine: a hot-path function
        repo.walk(h, 1, ("a",))             # refused: an ORM function on the hot path
        h.get(Node, 1)                      # refused: an ORM session's method
        row = repo.walk_row(h, 1, ("a",))
        if row is not None:
            row.deleted_at = 1.0            # refused: a hot-path row is read-only
'''


def test_mypy_refuses_orm_work_on_the_hot_path(tmp_path):
    """The contract that replaced the "Also fast" docstrings holds by type."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text(_SNIPPET)
    run = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                          "--cache-dir", str(tmp_path / "cache"), str(snippet)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    flagged = {int(line.split(":")[1]) for line in run.stdout.splitlines()
               if line.startswith("snippet.py:") and ": error: " in line}
    refused = {n for n, line in enumerate(_SNIPPET.splitlines(), 1) if "# refused" in line}
    assert len(refused) == 3 and flagged == refused, run.stdout + run.stderr
