"""The audit trail against the real daemon: the daemon anchors its chain in the anchor
file and the log, `strongroom audit verify` checks the chain up to that anchor, and
PROPPATCH, like every write, is audited."""
import sqlite3

import pytest

from tests.support.daemon import running_daemon

PROPPATCH = ('<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:e2e"><D:set>'
             '<D:prop><Z:colour>teal</Z:colour></D:prop></D:set></D:propertyupdate>')


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-audit",
                              {"audit": {"anchor_interval": "1s"}})


def test_proppatch_is_audited(daemon):
    src = daemon.path("f")
    src.write_bytes(b"x")
    assert daemon.request("alice", "PUT", "/props.txt", "-T", src).status == 201
    assert daemon.request("alice", "PROPPATCH", "/props.txt", "--data", PROPPATCH).status == 207
    out = daemon.cli("audit", "list", "--user", "alice", "--action", "proppatch", check=True)
    assert "/acme/props.txt" in out.stdout


def test_the_daemon_anchors_and_verify_checks_up_to_the_anchor(daemon):
    anchor = daemon.data_dir / "audit-anchor.json"
    assert daemon.request("alice", "GET", "/props.txt").status == 200
    daemon.stop()                      # the last anchor is written when it stops
    assert "audit anchor: event" in daemon.log_text()
    ok = daemon.cli("audit", "verify")
    assert ok.returncode == 0 and "intact" in ok.stdout, ok.stderr
    db = sqlite3.connect(daemon.data_dir / "strongroom.db")
    try:   # what someone with only the database can do: cut the end, set the head back
        last = db.execute("SELECT max(id) FROM audit_events").fetchone()[0]
        db.execute("DELETE FROM audit_events WHERE id > ?", (last - 3,))
        head = db.execute("SELECT hash FROM audit_events WHERE id = ?", (last - 3,)).fetchone()
        db.execute("UPDATE audit_head SET last_hash = ?", head)
        db.commit()
    finally:
        db.close()
    bad = daemon.cli("audit", "verify")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("strongroom: error: the audit trail is broken: the newest "
                                 "events were cut off") and bad.stderr.count("\n") == 1
    assert anchor.exists()
