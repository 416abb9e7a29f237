"""WebDAV locks are Session operations: taking one needs the write right, every lock
expires within [webdav] lock_max, a disabled user's locks end, the admin lists and
clears them with `strongroom locks`, and taking and releasing them is audited."""
import json
import re
import time

import pytest

from tests.support.daemon import running_daemon

pytestmark = pytest.mark.slow     # a long module: started first (tests/conftest.py)

LOCKINFO = ('<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
            '</D:lockscope><D:locktype><D:write/></D:locktype><D:owner>e2e</D:owner>'
            '</D:lockinfo>')
INFINITE = ("-H", "Timeout: Infinite", "-H", "Depth: infinity", "-H",
            "Content-Type: application/xml", "--data", LOCKINFO)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-locks", setup=_setup)


def _setup(d) -> None:
    d.add_user("reader", None, totp=False)
    d.add_user("carol", "acme", totp=False)
    d.cli("acl", "grant", "/acme", "--user", "reader", "--rights", "read", check=True)
    d.cli("library", "add", "handbook", check=True)
    for user, path in (("alice", "/report.txt"), ("staff", "/handbook/guide.txt")):
        _put(d, user, path, b"content")


def _put(d, user, path, data=b"x", *headers):
    src = d.path("src")
    src.write_bytes(data)
    return d.request(user, "PUT", path, "-T", src, *headers)


def _lock(d, user, path, *extra):
    r = d.request(user, "LOCK", path, *(extra or INFINITE))
    m = re.search(rb"opaquelocktoken:[0-9a-fx]+", r.body)
    return r, (m.group().decode() if m else None)


def _locks(d, *args):
    return json.loads(d.cli("locks", "list", *args, "--json", check=True).stdout)


def test_lock_needs_the_write_right(daemon):
    refused = [_lock(daemon, "reader", "/acme/")[0].status,               # read only
               _lock(daemon, "reader", "/acme/report.txt")[0].status,
               _lock(daemon, "reader", "/acme/lock-null.txt")[0].status,  # would create
               _lock(daemon, "alice", "/handbook/")[0].status,            # a read-only library
               _lock(daemon, "alice", "/handbook/guide.txt")[0].status,
               _lock(daemon, "alice", "/@versions/report.txt")[0].status,
               _lock(daemon, "reader", "/beta/")[0].status]               # not granted at all
    assert refused == [403, 403, 403, 403, 403, 403, 404]
    assert _locks(daemon) == []
    assert daemon.request("reader", "GET", "/acme/lock-null.txt").status == 404
    assert _put(daemon, "alice", "/report.txt", b"still writable").status in (201, 204)


def test_a_lock_lives_at_most_lock_max(daemon):
    r, token = _lock(daemon, "alice", "/capped.txt")
    assert r.status == 201 and re.search(rb":timeout>Second-(3599|3600)<", r.body), r.body
    (lock,) = _locks(daemon, "/acme/capped.txt")
    assert lock["expires_at"] <= time.time() + 3600 + 5
    r = daemon.request("alice", "LOCK", "/capped.txt", "-H", f"If: (<{token}>)",
                       "-H", "Timeout: Second-99999999")
    assert r.status == 200 and re.search(rb"Second-(3599|3600)<", r.body), r.body
    assert daemon.request("alice", "UNLOCK", "/capped.txt",
                          "-H", f"Lock-Token: <{token}>").status == 204


def test_an_old_long_lock_is_shortened_at_start(daemon):
    from strongroom.appliance.app import App
    from strongroom.appliance.db.models import Lock
    app = App(daemon.data_dir)
    try:
        with app.db.write() as s:
            s.add(Lock(token="opaquelocktoken:old", root="/acme", depth="infinity",
                       scope="exclusive", type="write", owner="", principal="carol",
                       timeout=2419200, expire=time.time() + 2419200))
    finally:
        app.close()
    daemon.restart()
    (lock,) = _locks(daemon, "--user", "carol")
    assert lock["expires_at"] <= time.time() + 3600 + 5
    daemon.cli("locks", "clear", "--token", "opaquelocktoken:old", check=True)


def test_the_admin_lists_and_clears_locks(daemon):
    r, _ = _lock(daemon, "alice", "/report.txt")
    assert r.status == 200
    assert _put(daemon, "staff", "/acme/report.txt").status == 423
    (lock,) = _locks(daemon, "/acme", "--user", "alice")
    assert lock["path"] == "/acme/report.txt" and lock["scope"] == "exclusive"
    out = json.loads(daemon.cli("locks", "clear", "/acme/report.txt", "--json",
                                check=True).stdout)
    assert out["cleared"] == 1
    assert _put(daemon, "staff", "/acme/report.txt").status == 204
    bad = daemon.cli("locks", "clear", "--user", "nobody")
    assert bad.returncode == 1 and bad.stderr == "strongroom: error: no user named 'nobody'\n"
    bad = daemon.cli("locks", "clear")
    assert bad.returncode == 1 and "exactly one of" in bad.stderr


def test_a_disabled_users_locks_end(daemon):
    _put(daemon, "carol", "/carols.txt")
    r, _ = _lock(daemon, "carol", "/carols.txt")
    assert r.status == 200
    assert _put(daemon, "alice", "/carols.txt").status == 423
    daemon.cli("user", "disable", "carol", check=True)
    try:
        assert _locks(daemon, "--user", "carol") == []
        assert _put(daemon, "alice", "/carols.txt").status == 204
    finally:
        daemon.cli("user", "enable", "carol", check=True)


def test_lock_and_unlock_are_audited(daemon):
    r, token = _lock(daemon, "alice", "/audited.txt")
    assert r.status == 201
    assert daemon.request("alice", "UNLOCK", "/audited.txt",
                          "-H", f"Lock-Token: <{token}>").status == 204
    events = json.loads(daemon.cli("audit", "list", "--user", "alice", "--json",
                                   check=True).stdout)
    done = [(e["action"], e["path"], e["outcome"]) for e in events]
    assert ("lock", "/acme/audited.txt", "ok") in done
    assert ("unlock", "/acme/audited.txt", "ok") in done
    refused = json.loads(daemon.cli("audit", "list", "--user", "reader", "--action", "lock",
                                    "--json", check=True).stdout)
    assert {(e["path"], e["outcome"]) for e in refused} >= {("/acme", "denied")}
