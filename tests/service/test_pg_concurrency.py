"""Writes racing each other in real threads, on SQLite and PostgreSQL (issue 18):
uploads and renames a<->b with overwrite leave every acknowledged upload on a live
file, usage stays the sum of what is stored, and a deadlock or serialization failure
is retried, then answered as Busy (503), never as an internal error."""
import sqlite3
import threading

import pytest
from sqlalchemy import func, select, text

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import Client, Node, Version
from strongroom.appliance.errors import Busy, Conflict, NotFound, StrongroomError
from tests.support.sessions import client_session, get, put

THREADS, ROUNDS = 4, 50


def _race(jobs):
    """Run each job(i) for i in range(ROUNDS) in its own thread; the unexpected
    exceptions (anything but the domain's refusals) they met."""
    start, unexpected = threading.Barrier(len(jobs)), []

    def run(job):
        start.wait()
        for i in range(ROUNDS):
            try:
                job(i)
            except (NotFound, Conflict):
                pass   # the file was moved away, or another writer came first
            except Exception as e:   # noqa: BLE001 - what the test is looking for
                unexpected.append(repr(e))

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return unexpected


def _live_usage(app, client_name):
    """(clients.used_bytes, sum of the live files' current versions) of a client."""
    with app.db.read() as s:
        client = s.scalar(select(Client).where(Client.name == client_name))
        stored = s.scalar(select(func.coalesce(func.sum(Version.size), 0))
                          .join(Node, Node.current_version_id == Version.id)
                          .where(Node.client_id == client.id, Node.deleted_at.is_(None)))
        return client.used_bytes, int(stored)


def test_uploads_racing_renames_stay_on_live_files(app):
    acme = client_session(app, "acme")
    movers = [app.session(acme.principal, "test", "127.0.0.1") for _ in range(2)]
    put(acme, "/a.bin", b"a" * 10)
    put(acme, "/b.bin", b"b" * 20)
    acknowledged = []

    def upload(session, k):
        def job(i):
            data = bytes([k]) * (100 + 37 * i + k)
            acknowledged.append((put(session, ("/a.bin", "/b.bin")[(i + k) % 2], data).version_id,
                                 data))
        return job

    def move(session, there):
        def job(i):
            session.rename(*(("/a.bin", "/b.bin") if (i % 2) == there else ("/b.bin", "/a.bin")),
                           overwrite=True)
        return job

    uploaders = [app.session(acme.principal, "test", "127.0.0.1") for _ in range(2)]
    unexpected = _race([upload(s, k) for k, s in enumerate(uploaders)] +
                       [move(s, k) for k, s in enumerate(movers)])
    assert unexpected == []
    assert len(acknowledged) == 2 * ROUNDS
    with app.db.read() as s:
        ids = [v for v, _ in acknowledged]
        stranded = s.scalars(select(Version.id).join(Node, Node.id == Version.node_id)
                             .where(Version.id.in_(ids), Node.deleted_at.is_not(None))).all()
        assert stranded == [], "acknowledged uploads became versions of deleted files"
        invisible = s.scalars(select(Node.id).where(
            Node.deleted_at.is_not(None), Node.current_version_id.is_(None),
            Node.id.in_(select(Version.node_id)))).all()
        assert invisible == [], "deleted files hold versions but no current one"
    live = {e.name for e in acme.list("/") if not e.name.startswith("@")}
    assert live <= {"a.bin", "b.bin"} and live
    for version_id, data in acknowledged[-6:]:   # still readable through their file
        with app.db.read() as s:
            node = s.get(Node, s.get(Version, version_id).node_id)
        assert get(acme, f"/{node.name}", version_id) == data
    used, stored = _live_usage(app, "acme")
    assert used == stored


def test_concurrent_overwrites_keep_usage_exact(app):
    acme = client_session(app, "acme")
    sessions = [app.session(acme.principal, "test", "127.0.0.1") for _ in range(THREADS)]

    def overwrite(session, k):
        return lambda i: put(session, f"/{(i + k) % 2}.bin", bytes(1000 * (k + 1) + i))

    assert _race([overwrite(s, k) for k, s in enumerate(sessions)]) == []
    used, stored = _live_usage(app, "acme")
    assert used == stored


def _raising(app, calls):
    """A statement wrapper that fails its transaction the first `calls[0]` times
    as the database does under contention: a real deadlock error from PostgreSQL,
    SQLite's 'database is locked'."""
    postgres = not app.db.url.startswith("sqlite")

    def fail(db):
        if calls[0] <= 0:
            return
        calls[0] -= 1
        if not postgres:
            raise sqlite3.OperationalError("database is locked")
        db.execute(_DEADLOCK)
    return fail


_DEADLOCK = text("DO $$ BEGIN RAISE EXCEPTION 'deadlock (injected)' "
                 "USING ERRCODE = '40P01'; END $$")


@pytest.mark.parametrize("operation", ["upload", "rename", "remove"])
def test_a_deadlock_is_retried_then_answered_as_busy(app, monkeypatch, operation):
    acme = client_session(app, "acme")
    put(acme, "/a.bin", b"first")
    postgres = not app.db.url.startswith("sqlite")
    calls = [1]
    fail = _raising(app, calls)
    real_charge, real_walk = repo.charge, repo.walk

    def charge(db, *args):
        fail(db)
        return real_charge(db, *args)

    def walk(db, *args):
        fail(db)
        return real_walk(db, *args)
    monkeypatch.setattr(repo, "charge", charge)
    monkeypatch.setattr(repo, "walk", walk)

    def run():
        if operation == "upload":
            put(acme, "/a.bin", b"second")
        elif operation == "rename":
            acme.rename("/a.bin", "/c.bin")
        else:
            acme.remove("/a.bin")

    if postgres:   # retried once: the operation succeeds
        run()
        assert calls == [0]
    else:          # SQLite waited its busy timeout already: a clear Busy at once
        with pytest.raises(Busy):
            run()
    calls[0] = 100   # contention that does not end: Busy, after a few attempts
    with pytest.raises(Busy) as caught:
        run()
    assert isinstance(caught.value, StrongroomError)
