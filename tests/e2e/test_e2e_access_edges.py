"""Access decisions at their edges, over SFTP, WebDAV and the CLI.

- Live names that look like view names are just names. A folder dragged out of
  `@trash` or a version copied out of `@versions` keeps the name the view gave it
  ('2026-01-01 00-00-00 d5 sub', '2026-12-01 21-11-53 v1 secret.txt'). A user
  granted only /acme/lvl1/sub must not reach, through the views, what is inside
  such a look-alike that they may not see.
- The way through to a granted folder lists folders, never a file: not when a file
  now sits where a folder on the way was, not its versions, not a deleted file
  there. And a deleted folder takes its grants with it."""
import json
import time

import paramiko
import pytest

from strongroom.appliance.service.access import ACCESS_TTL
from tests.support.daemon import HOST, running_daemon

PW = "View-names-pass-0123456789"
TRASH_LIKE = "2026-01-01 00-00-00 d5 sub"
VERSION_LIKE = "2026-12-01 21-11-53 v1 secret.txt"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-viewnames", setup=_setup)


def _setup(d) -> None:
    from strongroom.appliance.app import App
    from strongroom.appliance.service import ADMIN
    from tests.support.sessions import put
    app = App(d.data_dir)
    try:
        app.admin().add_user("sub-reader", client=None, staff=True, email=None, password=PW,
                             with_totp=False)
        boss = app.session(ADMIN, "test")
        for folder in ("/acme/lvl1", "/acme/lvl1/sub", f"/acme/lvl1/{TRASH_LIKE}"):
            boss.mkdir(folder)
        put(boss, f"/acme/lvl1/{TRASH_LIKE}/secret.txt", b"not for the sub reader")
        boss.remove(f"/acme/lvl1/{TRASH_LIKE}/secret.txt")
        for content in (b"v1 hidden", b"v2 hidden"):
            put(boss, f"/acme/lvl1/{VERSION_LIKE}", content)
        put(boss, "/acme/lvl1/sub/ok.txt", b"granted")
        app.admin().grant("/acme/lvl1/sub", login="sub-reader", rights="read")
    finally:
        app.close()


def _deleted_secret(d) -> str:
    from strongroom.appliance.app import App
    from strongroom.appliance.service import ADMIN
    app = App(d.data_dir)
    try:
        (item,) = app.session(ADMIN, "test").list(f"/acme/@trash/lvl1/{TRASH_LIKE}")
        return item.path
    finally:
        app.close()


PROBES = [("list", f"/acme/@trash/lvl1/{TRASH_LIKE}"),
          ("read", None),     # the deleted secret inside the look-alike folder
          ("list", f"/acme/@versions/lvl1/{VERSION_LIKE}"),
          ("read", f"/acme/@versions/lvl1/{VERSION_LIKE}")]


def _sftp_outcome(sftp, op, path) -> str:
    try:
        if op == "list":
            sftp.listdir(path)
        else:
            with sftp.open(path, "rb") as f:
                f.read()
    except FileNotFoundError:
        return "notfound"
    except PermissionError:
        return "denied"
    except OSError:   # reading a folder
        return "error"
    return "ok"


def test_look_alike_names_over_sftp(daemon):
    t = paramiko.Transport((HOST, daemon.sftp_port))
    try:
        t.connect(username="sub-reader", password=PW)
        sftp = paramiko.SFTPClient.from_transport(t)
        got = [_sftp_outcome(sftp, op, path or _deleted_secret(daemon)) for op, path in PROBES]
        assert got == ["notfound"] * len(PROBES)
        # what is granted still works through the views
        assert sftp.listdir("/acme/@versions/lvl1/sub") == ["ok.txt"]
        assert sftp.listdir("/acme/@trash/lvl1") == []
    finally:
        t.close()


def test_look_alike_names_over_webdav(daemon):
    daemon.users["sub-reader"] = type(daemon.users["alice"])("sub-reader", PW, None)
    statuses = []
    for op, path in PROBES:
        path = path or _deleted_secret(daemon)
        if op == "list":
            r = daemon.request("sub-reader", "PROPFIND", path, "-H", "Depth: 1")
        else:
            r = daemon.request("sub-reader", "GET", path)
        statuses.append(r.status)
    assert statuses == [404] * len(PROBES)
    listed = daemon.request("sub-reader", "PROPFIND", "/acme/@versions/lvl1/sub",
                            "-H", "Depth: 1")
    assert listed.status == 207 and b"ok.txt" in listed.body


def test_refused_probes_are_audited(daemon):
    events = json.loads(daemon.cli("audit", "list", "--user", "sub-reader", "--failed",
                                   "--json", check=True).stdout)
    assert {(e["path"], e["outcome"]) for e in events} >= {
        (f"/acme/@trash/lvl1/{TRASH_LIKE}", "hidden"),
        (f"/acme/@versions/lvl1/{VERSION_LIKE}", "hidden")}


def _dav_put(d, user, path, data):
    src = d.path("src")
    src.write_bytes(data)
    return d.request(user, "PUT", path, "-T", src).status


def test_the_way_through_shows_no_file(daemon):
    d = daemon
    assert d.request("alice", "MKCOL", "/proj").status == 201
    assert d.request("alice", "MKCOL", "/proj/sub").status == 201
    d.cli("acl", "grant", "/acme/proj/sub", "--user", "sub-reader", "--rights", "read",
          check=True)
    assert d.request("alice", "DELETE", "/proj").status == 204
    granted = json.loads(d.cli("acl", "list", "--user", "sub-reader", "--json",
                               check=True).stdout)
    assert "/acme/proj/sub" not in [g["path"] for g in granted], "went with the folder"
    assert _dav_put(d, "alice", "/proj", b"a file where the folder was") == 201
    d.cli("acl", "grant", "/acme/lvl1/sub", "--user", "sub-reader", "--rights", "read",
          check=True)
    assert _dav_put(d, "alice", "/lvl1/plan.txt", b"beside the granted folder") == 201
    for path in ("/acme/lvl1/plan.txt", "/acme/@versions/lvl1/plan.txt"):
        assert d.request("sub-reader", "GET", path).status == 404
        assert d.request("sub-reader", "PROPFIND", path, "-H", "Depth: 0").status == 404
        assert d.cli("acl", "check", "sub-reader", "read", path).stdout.split()[-1] \
            != "allowed"
    listing = d.request("sub-reader", "PROPFIND", "/acme/lvl1", "-H", "Depth: 1").body
    assert b"sub" in listing and b"plan.txt" not in listing
    t = paramiko.Transport((HOST, d.sftp_port))
    try:
        t.connect(username="sub-reader", password=PW)
        sftp = paramiko.SFTPClient.from_transport(t)
        assert "plan.txt" not in sftp.listdir("/acme/lvl1")
        for path in ("/acme/lvl1/plan.txt", "/acme/@versions/lvl1/plan.txt"):
            assert _sftp_outcome(sftp, "read", path) == "notfound"
    finally:
        t.close()


def test_a_deleted_file_on_the_way_stays_hidden(daemon):
    d = daemon
    assert _dav_put(d, "alice", "/zeta", b"deleted secret") == 201
    assert d.request("alice", "DELETE", "/zeta").status == 204
    assert d.request("alice", "MKCOL", "/zeta").status == 201
    assert d.request("alice", "MKCOL", "/zeta/sub").status == 201
    d.cli("acl", "grant", "/acme/zeta/sub", "--user", "sub-reader", "--rights", "read",
          check=True)
    from strongroom.appliance.app import App
    from strongroom.appliance.service import ADMIN
    app = App(d.data_dir)
    try:
        item = next(e for e in app.session(ADMIN, "test").list("/acme/@trash")
                    if e.name.endswith(" zeta") and not e.is_dir)
    finally:
        app.close()
    time.sleep(ACCESS_TTL)      # the daemon has seen the grant: the way through is open
    assert d.request("sub-reader", "GET", item.path).status == 404
    listing = d.request("sub-reader", "PROPFIND", "/acme/@trash", "-H", "Depth: 1").body
    assert b"d" + str(item.node_id).encode() + b" zeta" not in listing
