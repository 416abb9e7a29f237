"""The audit trail on a database whose disk is full (issue 18): reads, logins and
refusals go on, their events held in memory and appended in order once there is
room; changes are refused with NoSpace, event and all; the chain verifies after.

The full disk is the Database's own signal (NoSpace from a write transaction,
appliance.db.diskfull); a real SQLite "database or disk is full" is made with
max_page_count to check that it is told apart. The daemon on a real full tmpfs is
tests/e2e/test_e2e_full_disk.py.
"""
import contextlib
import sqlite3

import pytest

from strongroom.appliance.db import diskfull
from strongroom.appliance.errors import NoSpace, NotFound
from strongroom.appliance.service import audit_held
from tests.support.sessions import PASSWORD, client_session, get, put, staff_session


@contextlib.contextmanager
def disk_full(app):
    """Every write transaction fails as on a full disk; reads work."""
    def refuse():
        raise NoSpace(diskfull.MESSAGE)
    db = app.db
    db.write, db.fast_write = refuse, refuse
    try:
        yield
    finally:
        del db.write, db.fast_write


def actions(app) -> list[tuple[str, str]]:
    return [(e["action"], e["outcome"]) for e in app.admin().audit_events()]


def test_reads_logins_and_refusals_go_on_and_their_events_follow(app):
    acme = client_session(app, "acme")
    put(acme, "/a.txt", b"kept")
    sam = staff_session(app)                    # granted nothing: acme is hidden from sam
    before = len(app.admin().audit_events())
    with disk_full(app):
        assert get(acme, "/a.txt") == b"kept"
        principal = app.auth.password_login("acme-user", PASSWORD, "test", "127.0.0.1")
        assert app.session(principal, "test", "127.0.0.1").stat("/a.txt").size == 4
        with pytest.raises(NotFound):
            sam.open_read("/acme/a.txt")        # refused, and the refusal recorded
        with pytest.raises(NoSpace):
            acme.mkdir("/new")                  # a change: refused, nothing held for it
        with pytest.raises(NoSpace):
            put(acme, "/a.txt", b"new")
        assert app.audit.holding == 3
        assert len(app.admin().audit_events()) == before
        assert not app.audit.flush(app.db)      # still full: kept
    assert app.audit.flush(app.db) and app.audit.holding == 0
    events = app.admin().audit_events()[before:]
    assert [(e["action"], e["outcome"]) for e in events] == [
        ("read", "ok"), ("login", "ok"), ("read", "hidden")]
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    assert get(acme, "/a.txt") == b"kept"
    assert app.admin().verify_audit().problem is None


def test_held_events_are_bounded_and_nothing_is_lost(app, monkeypatch):
    monkeypatch.setattr(audit_held, "HELD_MAX", 2)
    acme = client_session(app, "acme")
    put(acme, "/a.txt", b"kept")
    with disk_full(app):
        get(acme, "/a.txt")
        get(acme, "/a.txt")
        with pytest.raises(NoSpace):            # a third event would be lost: refused
            get(acme, "/a.txt")
        assert app.audit.holding == 2
    get(acme, "/a.txt")     # room again: the held ones are written first, then this one
    assert app.audit.holding == 0
    assert [a for a, _ in actions(app)][-3:] == ["read", "read", "read"]
    with disk_full(app):
        get(acme, "/a.txt")
    app.audit.anchor(app.db)   # as the daemon's thread (each second) and every process's end
    assert app.audit.holding == 0 and actions(app)[-1] == ("read", "ok")
    assert app.admin().verify_audit().problem is None


def test_a_full_sqlite_database_is_told_apart(tmp_path):
    conn = sqlite3.connect(tmp_path / "small.db")
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.OperationalError) as full:
        for _ in range(100):
            conn.execute("INSERT INTO t VALUES (?)", (b"x" * 4000,))
    assert diskfull.disk_full(full.value)
    assert not diskfull.disk_full(sqlite3.OperationalError("database is locked"))
    conn.close()
