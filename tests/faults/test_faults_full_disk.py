"""A full disk: 507 or a clear SFTP failure, the previous version stays, reads go on,
and service resumes when space is freed (issue 18).

The daemon keeps its blobs on one small tmpfs and its SQLite database on another
(the test mounts both; we run as root). Each test fills one of them with a filler
file, checks what clients see, deletes the filler and checks that uploads work
again and that `strongroom audit verify` passes: the read events the full
database could not take were held in memory and written, in order, once it could.
"""
import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import paramiko
from paramiko.sftp import CMD_CLOSE
import pytest

from tests.support.daemon import HOST, TIMEOUT, Daemon, need

SIZE = "64m"
FILLER = "filler.bin"


def mount_tmpfs(where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs",
                           str(where)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (root needed): {proc.stderr.strip()}")


def unmount(where: Path) -> None:
    for _ in range(50):    # a daemon just killed may hold files a moment longer
        if subprocess.run(["umount", str(where)], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """A daemon whose blobs and database live on their own 64 MiB tmpfs each."""
    need("strongroom", "mount", "umount")
    d = Daemon(tmp_path_factory.mktemp("fulldisk"))
    d.provision()
    blobs, dbdir = d.root / "blobfs", d.root / "dbfs"
    mounted = []
    try:
        for where in (blobs, dbdir):
            mount_tmpfs(where)
            mounted.append(where)
        shutil.move(str(d.data_dir / "strongroom.db"), dbdir / "strongroom.db")
        for extra in ("strongroom.db-wal", "strongroom.db-shm"):
            if (d.data_dir / extra).exists():
                shutil.move(str(d.data_dir / extra), dbdir / extra)
        d.set_options("storage", blob_dir=str(blobs), reserve="0")
        d.set_options("database", url=f"sqlite:///{dbdir / 'strongroom.db'}")
        d.blob_dir, d.staging_dir = blobs, blobs / ".staging"
        d.start()
        yield d
    finally:
        if d.running:
            d.stop()
        for where in mounted:
            unmount(where)


@pytest.fixture(autouse=True)
def running(daemon):
    daemon.ensure_running()


@contextlib.contextmanager
def full(folder: Path, leave: int = 0):
    """Fill the file system holding `folder` but for `leave` bytes, and free it after."""
    filler = folder / FILLER
    try:
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (1 << 20, 4096, 1):   # then the last partial megabyte, page, byte
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\xa5" * size)
        finally:
            os.close(fd)
        assert os.statvfs(folder).f_bavail == 0
        if leave:
            os.truncate(filler, os.path.getsize(filler) - leave)
        yield
    finally:
        filler.unlink(missing_ok=True)


def put(daemon, path: str, data: bytes, *extra) -> int:
    src = daemon.path("up.bin")
    src.write_bytes(data)
    return daemon.request("alice", "PUT", path, "--data-binary", f"@{src}", *extra).status


def get(daemon, path: str) -> tuple[int, bytes]:
    r = daemon.request("alice", "GET", path)
    return r.status, r.body


@contextlib.contextmanager
def sftp(daemon):
    """A paramiko SFTP client as alice: a new connection, so a login of its own."""
    u = daemon.users["alice"]
    t = paramiko.Transport((HOST, daemon.sftp_port))
    try:
        t.connect(username=u.login, password=u.password)
        client = paramiko.SFTPClient.from_transport(t)
        client.get_channel().settimeout(TIMEOUT)
        yield client
    finally:
        t.close()


def sftp_get(daemon, path: str) -> bytes:
    with sftp(daemon) as c, c.open(path, "rb") as f:
        return f.read()


def sftp_put_refused(daemon, data: bytes, path: str) -> str:
    """The message of the SFTP failure that refuses the upload: at a write, or at
    the CLOSE that commits it (sent by hand: paramiko's close() drops its status)."""
    with sftp(daemon) as c, pytest.raises(IOError) as refused:
        f = c.open(path, "wb")
        f.write(data)
        f.flush()
        f._closed = True
        c._request(CMD_CLOSE, f.handle)
    return str(refused.value)


def sftp_put(daemon, data: bytes, path: str) -> None:
    with sftp(daemon) as c, c.open(path, "wb") as f:
        f.write(data)


def propfind_ok(daemon, path: str) -> bool:
    r = daemon.request("alice", "PROPFIND", path, "-H", "Depth: 1")
    return r.status == 207


def assert_recovered(daemon, tag: str) -> None:
    """Uploads work again over both protocols, the trail verifies, no traceback."""
    data = os.urandom(3 << 20)
    assert put(daemon, f"/after-{tag}.bin", data) == 201
    assert get(daemon, f"/after-{tag}.bin") == (200, data)
    sftp_put(daemon, data[::-1], f"/after-{tag}-sftp.bin")
    assert get(daemon, f"/after-{tag}-sftp.bin") == (200, data[::-1])
    verify = daemon.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "Traceback" not in daemon.log_since_start()


def test_blob_disk_full(daemon):
    old = os.urandom(1 << 20)
    assert put(daemon, "/kept.bin", old) == 201
    with full(daemon.blob_dir, leave=2 << 20):
        # no length announced: the upload runs into ENOSPC while it writes its blob
        assert put(daemon, "/kept.bin", os.urandom(8 << 20),
                   "-H", "Transfer-Encoding: chunked") == 507
        assert put(daemon, "/kept.bin", os.urandom(8 << 20)) == 507   # announced: at once
        assert "not enough free space" in sftp_put_refused(daemon, os.urandom(8 << 20),
                                                           "/kept.bin")
        # reads and metadata work on: the database is elsewhere
        assert get(daemon, "/kept.bin") == (200, old)
        assert sftp_get(daemon, "/kept.bin") == old
        assert propfind_ok(daemon, "/")
        assert daemon.request("alice", "MKCOL", "/folder-blobs-full").status == 201
        assert list(daemon.staging_dir.iterdir()) == []
    assert get(daemon, "/kept.bin") == (200, old)     # the previous version stayed
    assert_recovered(daemon, "blobs")
    report = daemon.cli("doctor", "--json")
    assert report.returncode == 0, report.stdout


def test_database_disk_full(daemon):
    old = os.urandom(1 << 20)
    assert put(daemon, "/db-kept.bin", old) == 201
    reads_before = daemon.cli("audit", "list", "--action", "read", "--json").stdout.count('"id"')
    with full(daemon.root / "dbfs"):
        for _ in range(3):
            assert get(daemon, "/db-kept.bin") == (200, old)
            assert sftp_get(daemon, "/db-kept.bin") == old   # a new connection: a login too
            assert propfind_ok(daemon, "/")
        # writes cannot be recorded: 507 and an SFTP failure that says why, no 500
        assert put(daemon, "/db-kept.bin", os.urandom(1 << 20)) == 507
        assert daemon.request("alice", "MKCOL", "/folder-db-full").status == 507
        assert daemon.request("alice", "MOVE", "/db-kept.bin", "-H",
                              f"Destination: {daemon.url('/db-moved.bin')}").status == 507
        assert "not enough free space" in sftp_put_refused(daemon, os.urandom(1 << 20),
                                                           "/db-kept.bin")
    assert get(daemon, "/db-kept.bin") == (200, old)
    assert_recovered(daemon, "db")
    # the six reads made while the database was full are in the trail now, none lost
    reads_after = daemon.cli("audit", "list", "--action", "read", "--json").stdout.count('"id"')
    assert reads_after - reads_before >= 6 + 2
