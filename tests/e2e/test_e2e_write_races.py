"""Writes that meet a limit change nothing, whatever runs at the same time, over
SFTP and WebDAV: concurrent uploads cannot together exceed a quota (the check and
the usage update are one step at commit), and a move between clients that is
refused (no right, no room) leaves no copy behind and the destination as it was."""
import http.client
import base64
import ssl

import paramiko
import pytest

from tests.support.daemon import HOST, running_daemon

MIB = 1024 * 1024
PW = "Write-races-pass-0123456789"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-races", setup=_setup)


def _setup(d) -> None:
    from strongroom.appliance.app import App
    app = App(d.data_dir)
    try:
        admin = app.admin()
        admin.add_client("small", quota=10 * MIB)
        admin.add_user("tiny", client="small", staff=False, email=None, password=PW,
                       with_totp=False)
        admin.add_user("mover", client=None, staff=True, email=None, password=PW,
                       with_totp=False)
        for folder in ("/acme/outbox", "/beta/inbox"):
            app.session(_admin(), "test").mkdir(folder)
        admin.grant("/acme/outbox", login="mover", rights="read,write")       # no delete
        admin.grant("/beta/inbox", login="mover", rights="read,write,delete")
        admin.grant("/beta", login="mover", rights="read,write,delete")
        admin.add_client("room", quota=10 * MIB)
        admin.grant("/room", login="mover", rights="read,write,delete")
        boss = app.session(_admin(), "test")
        boss.mkdir("/beta/big")
        put(boss, "/beta/big/0small.txt", b"small")
        for name in ("a.bin", "b.bin"):
            put(boss, f"/beta/big/{name}", bytes(6 * MIB))
        boss.mkdir("/room/target")
        put(boss, "/room/target/keep.txt", b"keep me")
    finally:
        app.close()


def put(session, path, data):
    from tests.support.sessions import put as upload
    return upload(session, path, data)


def _admin():
    from strongroom.appliance.service import ADMIN
    return ADMIN


def _sftp(d, login):
    t = paramiko.Transport((HOST, d.sftp_port))
    t.connect(username=login, password=PW)
    return t, paramiko.SFTPClient.from_transport(t)


def _used(d, client="small") -> int:
    import json
    clients = json.loads(d.cli("client", "list", "--json", check=True).stdout)
    return next(c["used_bytes"] for c in clients if c["name"] == client)


class SlowPut:
    """A WebDAV PUT whose body is sent but for its last byte, so that two can be
    open at once; finish() sends it and returns the status."""

    def __init__(self, d, path, size):
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        self.conn = http.client.HTTPSConnection(HOST, d.webdav_port, context=ctx, timeout=60)
        auth = base64.b64encode(f"tiny:{PW}".encode()).decode()
        self.conn.putrequest("PUT", path)
        self.conn.putheader("Authorization", f"Basic {auth}")
        self.conn.putheader("Content-Length", str(size))
        self.conn.endheaders()
        for _ in range(size // MIB - 1):
            self.conn.send(bytes(MIB))
        self.conn.send(bytes(MIB - 1))

    def finish(self) -> int:
        self.conn.send(b"\0")
        resp = self.conn.getresponse()
        resp.read()
        self.conn.close()
        return resp.status


def test_parallel_sftp_uploads_cannot_overrun_the_quota(daemon):
    t, sftp = _sftp(daemon, "tiny")
    try:
        files = [sftp.open(f"/sftp-{i}.bin", "wb") for i in range(2)]
        for f in files:
            f.write(bytes(6 * MIB))
        for f in files:
            f.close()   # paramiko does not raise a refused CLOSE: the listing tells
        assert len([n for n in sftp.listdir("/") if n.startswith("sftp-")]) == 1
    finally:
        t.close()
    assert _used(daemon) == 6 * MIB
    _clean(daemon)


def test_parallel_webdav_uploads_cannot_overrun_the_quota(daemon):
    puts = [SlowPut(daemon, f"/dav-{i}.bin", 6 * MIB) for i in range(2)]
    statuses = sorted(p.finish() for p in puts)
    assert statuses == [201, 507]
    assert _used(daemon) == 6 * MIB
    _clean(daemon)


def test_an_upload_over_each_protocol_at_once(daemon):
    t, sftp = _sftp(daemon, "tiny")
    try:
        f = sftp.open("/mixed.bin", "wb")
        f.write(bytes(6 * MIB))
        put = SlowPut(daemon, "/mixed-dav.bin", 6 * MIB)
        f.close()
        dav_ok = put.finish() == 201
        sftp_ok = "mixed.bin" in sftp.listdir("/")
        assert sftp_ok != dav_ok
    finally:
        t.close()
    assert _used(daemon) == 6 * MIB
    _clean(daemon)


def _clean(d) -> None:
    t, sftp = _sftp(d, "tiny")
    try:
        for name in sftp.listdir("/"):
            if not name.startswith("@"):
                sftp.remove(f"/{name}")
    finally:
        t.close()
    assert _used(d) == 0


def test_a_refused_move_between_clients_changes_nothing(daemon):
    daemon.users["mover"] = type(daemon.users["alice"])("mover", PW, None)
    src = daemon.path("doc")
    src.write_bytes(b"stays where it is")
    assert daemon.request("mover", "PUT", "/acme/outbox/doc.txt", "-T", src).status == 201
    r = daemon.request("mover", "MOVE", "/acme/outbox/doc.txt", "-H",
                       f"Destination: {daemon.url('/beta/inbox/doc.txt')}")
    assert r.status == 403
    t, sftp = _sftp(daemon, "mover")
    try:
        with pytest.raises(PermissionError):
            sftp.posix_rename("/acme/outbox/doc.txt", "/beta/inbox/doc-sftp.txt")
        assert sftp.listdir("/beta/inbox") == []
        assert sftp.listdir("/beta/@trash") == []
        with sftp.open("/acme/outbox/doc.txt") as f:
            assert f.read() == b"stays where it is"
    finally:
        t.close()


def _tree(d, login, path):
    t, sftp = _sftp(d, login)
    try:
        out = {}
        for name in sorted(sftp.listdir(path)):
            with sftp.open(f"{path}/{name}") as f:
                out[name] = len(f.read())
        return out
    finally:
        t.close()


def test_a_move_between_clients_without_room_changes_nothing(daemon):
    before_src = _tree(daemon, "mover", "/beta/big")
    r = daemon.request("mover", "MOVE", "/beta/big", "-H",
                       f"Destination: {daemon.url('/room/big')}")
    assert r.status == 507
    t, sftp = _sftp(daemon, "mover")
    try:
        assert "big" not in sftp.listdir("/room")
        with pytest.raises(OSError):
            sftp.posix_rename("/beta/big", "/room/big-sftp")
        assert "big-sftp" not in sftp.listdir("/room")
    finally:
        t.close()
    assert _tree(daemon, "mover", "/beta/big") == before_src
    r = daemon.request("mover", "MOVE", "/beta/big", "-H", "Overwrite: T", "-H",
                       f"Destination: {daemon.url('/room/target')}")
    assert r.status == 507
    assert _tree(daemon, "mover", "/room/target") == {"keep.txt": 7}
    assert _tree(daemon, "mover", "/beta/big") == before_src
    assert _used(daemon, "room") == 7


def test_a_move_between_clients_onto_a_folder_replaces_it_whole(daemon):
    t, sftp = _sftp(daemon, "mover")
    try:
        sftp.mkdir("/beta/few")
        with sftp.open("/beta/few/new.txt", "wb") as f:
            f.write(b"new")
    finally:
        t.close()
    r = daemon.request("mover", "MOVE", "/beta/few", "-H", "Overwrite: T", "-H",
                       f"Destination: {daemon.url('/room/target')}")
    assert r.status == 204, r
    assert _tree(daemon, "mover", "/room/target") == {"new.txt": 3}
    listing = daemon.request("mover", "PROPFIND", "/room", "-H", "Depth: 1").body
    assert b"strongroom-" not in listing, "no temporary name is left"
