"""The audit chain is keyed and anchored, on SQLite and PostgreSQL.

The review's attack: edit a row, delete 42 others, recompute every hash with the
project's own digest function, and `audit verify` passed. Without the master key
no recomputed chain verifies; cutting the newest rows off (and setting the head
back) is caught by the anchor outside the database; chains from before the key
are re-chained once, saying whether they verified."""
import hashlib
import json

import pytest
from sqlalchemy import select, text

from strongroom.appliance.app import App
from strongroom.appliance.db.models import AuditEvent, AuditHead
from strongroom.appliance.service import audit
from tests.support.sessions import client_session, put


@pytest.fixture
def busy(app):
    acme = client_session(app, "acme")
    for i in range(60):
        put(acme, f"/f{i}.txt", b"x")
    return app


def _rewrite_chain(app, digest) -> None:
    """What someone with the database (and the source code) can do: recompute every
    hash in order with `digest` and point the head at the result."""
    with app.db.write() as s:
        prev = audit.GENESIS
        for ev in s.scalars(select(AuditEvent).order_by(AuditEvent.id)):
            ev.prev_hash, ev.hash = prev, digest(prev, audit._fields(ev))
            prev = ev.hash
        s.get(AuditHead, 1).last_hash = prev


def _verdict(app):
    with app.db.read() as s:
        return app.audit.verify(s)


def test_a_recomputed_chain_does_not_verify(busy):
    app = busy
    app.audit.anchor(app.db)
    with app.db.write() as s:
        ids = list(s.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))
        s.execute(text("UPDATE audit_events SET detail = 'forged' WHERE id = :id"),
                  {"id": ids[10]})
        s.execute(text("DELETE FROM audit_events WHERE id > :a AND id <= :b"),
                  {"a": ids[10], "b": ids[52]})
    _rewrite_chain(app, audit._plain_digest)                   # the old, keyless digest
    assert _verdict(app).bad == ids[0]
    stranger = audit.Chain(b"k" * 32, app.audit._anchor_file)  # the digest, any other key
    _rewrite_chain(app, stranger.digest)
    assert _verdict(app).bad == ids[0]


def test_cutting_off_the_newest_events_is_found_by_the_anchor(busy):
    app = busy
    app.audit.anchor(app.db)
    with app.db.write() as s:
        ids = list(s.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))
        s.execute(text("DELETE FROM audit_events WHERE id > :id"), {"id": ids[-4]})
        last = s.scalar(select(AuditEvent.hash).where(AuditEvent.id == ids[-4]))
        s.get(AuditHead, 1).last_hash = last
    verdict = _verdict(app)
    assert verdict.bad == -1 and "cut off" in verdict.problem
    app.audit._unanchored = True
    app.audit.anchor(app.db)       # an anchor is never moved back along a cut chain
    assert _verdict(app).bad == -1


def test_an_altered_or_missing_anchor_fails(busy):
    app = busy
    app.audit.anchor(app.db)
    anchor_file = app.audit._anchor_file
    anchor = json.loads(anchor_file.read_text())
    anchor_file.write_text(json.dumps(dict(anchor, count=anchor["count"] - 3)))
    assert "altered" in _verdict(app).problem
    anchor_file.unlink()
    assert "no anchor" in _verdict(app).problem
    app.audit._unanchored = True
    app.audit.anchor(app.db)
    assert _verdict(app).bad is None


def test_the_anchor_follows_the_chain_and_is_logged(busy, caplog):
    app = busy
    caplog.set_level("INFO", "strongroom.audit")
    app.audit.anchor(app.db)
    first = json.loads(app.audit._anchor_file.read_text())
    put(client_session(app, "beta"), "/g.txt", b"y")
    app.audit.anchor(app.db)
    second = json.loads(app.audit._anchor_file.read_text())
    assert second["count"] > first["count"] and second["id"] > first["id"]
    assert f"audit anchor: event {second['id']}" in caplog.text
    assert _verdict(app).bad is None


@pytest.mark.parametrize("broken", [False, True])
def test_a_chain_from_before_the_key_is_rechained_once(data_dir, broken):
    app = App(data_dir)
    try:
        client_session(app, "acme")
        with app.db.write() as s:    # make it a plain chain, as every chain was before
            prev = audit.GENESIS
            for ev in s.scalars(select(AuditEvent).order_by(AuditEvent.id)):
                ev.prev_hash, ev.hash = prev, audit._plain_digest(prev, audit._fields(ev))
                prev = ev.hash
            head = s.get(AuditHead, 1)
            head.last_hash, head.scheme = prev, "sha256"
            if broken:
                s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = "
                               "(SELECT min(id) FROM audit_events)"))
        app.audit._anchor_file.unlink(missing_ok=True)
    finally:
        app.db.dispose()
    app = App(data_dir)
    try:
        events = app.admin().audit_events(action="audit-rekey")
        assert len(events) == 1
        assert ("broken at event" in events[0]["detail"]) == broken
        assert events[0]["outcome"] == ("failed" if broken else "ok")
        assert app.admin().verify_audit().bad is None
    finally:
        app.close()
    App(data_dir).close()                # no second re-chaining
    again = App(data_dir)
    try:
        assert len(again.admin().audit_events(action="audit-rekey")) == 1
    finally:
        again.close()


def test_the_key_is_not_in_the_database(busy):
    key = busy.keyring.derive("audit chain")
    with busy.db.read() as s:
        dump = " ".join(str(v) for row in s.execute(text("SELECT * FROM audit_events"))
                        for v in row)
    assert key.hex() not in dump and hashlib.sha256(key).hexdigest() not in dump


def test_a_chain_set_back_to_plain_is_not_rechained(busy):
    """The attack on the re-chaining: with only the database, rewrite a plain chain
    (with forged events) and mark the head plain, hoping the next start blesses it."""
    app = busy
    app.audit.anchor(app.db)
    with app.db.write() as s:
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = "
                       "(SELECT max(id) FROM audit_events)"))
    _rewrite_chain(app, audit._plain_digest)
    with app.db.write() as s:
        s.get(AuditHead, 1).scheme = "sha256"
    again = App(app.data_dir)
    try:
        assert again.admin().audit_events(action="audit-rekey") == []
        verdict = again.admin().verify_audit()
        assert verdict.bad is not None
    finally:
        again.db.dispose()
