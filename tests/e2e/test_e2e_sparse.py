"""Sparse files, size limits, free-space reserve and keyed digests against the real daemon.

A write far past the end stores kilobytes, not the zeros in between: the version
records its holes (authenticated), reads return zeros there over both protocols,
and a disconnect stops any copying at once. `[storage] max_file_size` and
`[storage] reserve` refuse uploads over both protocols while reads go on. The
database holds no plain SHA-256 of any content, and a legacy one is converted
when the daemon starts.
"""
import hashlib
import json
import os
import sqlite3
import time
from contextlib import contextmanager

import paramiko
import pytest
from paramiko.sftp import CMD_WRITE, int64

from tests.support.daemon import HOST, running_daemon, sftp_quote as q

GIB = 1 << 30
MIB = 1 << 20
FAR = 6 * GIB                # where the one byte goes
CHUNK = 256 * 1024           # [storage] chunk_size of the test daemons (the default)


def stored(chunks: int) -> int:
    """The most a blob of that many stored chunks may take on disk (header, file-system
    blocks and metadata included); anything near gigabytes means zeros were written."""
    return chunks * CHUNK + 64 * 1024
TIMEOUT = 20                 # seconds for any one SFTP request


USER = "olga"                # of client "open", which has no quota (as in the attack)


def _unlimited_client(daemon) -> None:
    daemon.cli("client", "add", "open", check=True)
    daemon.add_user(USER, "open", totp=False)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, setup=_unlimited_client)


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A second daemon whose files may be at most 10 MiB."""
    yield from running_daemon(tmp_path_factory, "limited",
                              options={"storage": {"max_file_size": "10MiB"}})


@contextmanager
def sftp_client(daemon, login: str = USER):
    u = daemon.users[login]
    t = paramiko.Transport((HOST, daemon.sftp_port))
    try:
        t.connect(username=u.login, password=u.password)
        sftp = paramiko.SFTPClient.from_transport(t)
        sftp.get_channel().settimeout(TIMEOUT)
        yield sftp
    finally:
        t.close()


@contextmanager
def database(daemon):
    conn = sqlite3.connect(daemon.data_dir / "strongroom.db", timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def current_version(daemon, name: str) -> dict:
    """The current version row of the live file called `name` (names are unique here)."""
    with database(daemon) as db:
        row = db.execute("SELECT v.* FROM versions v JOIN nodes n ON n.current_version_id = v.id"
                         " WHERE n.name = ? AND n.deleted_at IS NULL", (name,)).fetchone()
    assert row is not None, f"no current version of {name}"
    return dict(row)


def on_disk(daemon, version: dict) -> int:
    """Bytes the version's blob really occupies on the file system."""
    blob = daemon.blob_dir / version["blob_id"][:2] / version["blob_id"]
    return blob.stat().st_blocks * 512


def write_at(sftp, path: str, writes, mode: str = "wb") -> None:
    """Open `path` with `mode`, write each (offset, data) in turn, close (commit)."""
    with sftp.open(path, mode) as f:
        for offset, data in writes:
            f.seek(offset)
            f.write(data)


def read_at(sftp, path: str, offset: int, n: int) -> bytes:
    with sftp.open(path, "rb") as f:
        f.seek(offset)
        return f.read(n)


def range_get(daemon, path: str, first: int, last: int):
    return daemon.request(USER, "GET", path, "-H", f"Range: bytes={first}-{last}")


def assert_reads(daemon, sftp, path: str, expected: dict) -> None:
    """`expected`: offset -> bytes, read over SFTP and as an HTTP Range GET."""
    for offset, data in expected.items():
        assert read_at(sftp, path, offset, len(data)) == data, offset
        r = range_get(daemon, path, offset, offset + len(data) - 1)
        assert (r.status, r.body) == (206, data), (offset, r.status, r.stderr)


# -- sparse files -------------------------------------------------------------------

def test_one_byte_far_away_stores_kilobytes(daemon):
    began = time.monotonic()
    with sftp_client(daemon) as sftp:
        write_at(sftp, "/far.bin", [(FAR, b"X")])
        assert time.monotonic() - began < TIMEOUT
        assert sftp.stat("/far.bin").st_size == FAR + 1
        assert_reads(daemon, sftp, "/far.bin", {0: bytes(100), 12345: bytes(7),
                                                3 * GIB: bytes(10), FAR - 3: b"\0\0\0X"})
    version = current_version(daemon, "far.bin")
    assert version["size"] == FAR + 1
    assert on_disk(daemon, version) < stored(1), on_disk(daemon, version)
    assert not list(daemon.staging_dir.iterdir())


def test_reopen_and_append_stays_sparse(daemon):
    """The two-step attack: a hole, then an upload continuing the file must keep it a hole."""
    with sftp_client(daemon) as sftp:
        write_at(sftp, "/append.bin", [(0, b"head"), (FAR, b"X")])
        write_at(sftp, "/append.bin", [(FAR + 1, b"YZ")], mode="r+")
        assert sftp.stat("/append.bin").st_size == FAR + 3
        assert_reads(daemon, sftp, "/append.bin", {0: b"head\0", 2 * GIB: bytes(9),
                                                   FAR - 1: b"\0XYZ"})
    version = current_version(daemon, "append.bin")
    assert on_disk(daemon, version) < stored(2), on_disk(daemon, version)


def test_random_access_writes_keep_holes(daemon):
    """A write before the current end switches the upload to the overlay: still sparse."""
    with sftp_client(daemon) as sftp:
        write_at(sftp, "/overlay.bin", [(FAR, b"X")])
        write_at(sftp, "/overlay.bin", [(100, b"A"), (50, b"B"), (3 * GIB, b"C")], mode="r+")
        assert sftp.stat("/overlay.bin").st_size == FAR + 1
        assert_reads(daemon, sftp, "/overlay.bin", {0: bytes(50) + b"B" + bytes(49) + b"A\0",
                                                    3 * GIB - 1: b"\0C\0", FAR - 1: b"\0X"})
    version = current_version(daemon, "overlay.bin")
    assert on_disk(daemon, version) < stored(3), on_disk(daemon, version)


def test_copy_of_a_sparse_file_stays_sparse(daemon):
    with sftp_client(daemon) as sftp:
        write_at(sftp, "/tocopy.bin", [(FAR, b"X")])
    r = daemon.request(USER, "COPY", "/tocopy.bin", "-H",
                       "Destination: " + daemon.url("/copied.bin"), max_time=TIMEOUT)
    assert r.status == 201, (r.status, r.stderr)
    version = current_version(daemon, "copied.bin")
    assert version["size"] == FAR + 1
    assert on_disk(daemon, version) < stored(1), on_disk(daemon, version)


def test_zero_length_write_does_not_extend(daemon):
    with sftp_client(daemon) as sftp:
        with sftp.open("/empty-write.bin", "wb") as f:
            f.write(b"abc")
            f.flush()
            # paramiko sends no empty WRITE itself: one by hand
            sftp._request(CMD_WRITE, f.handle, int64(FAR), b"")
        assert sftp.stat("/empty-write.bin").st_size == 3


def test_hole_map_edits_are_detected(daemon):
    """Marking a stored chunk as a hole (or dropping the map) never serves zeros."""
    with sftp_client(daemon) as sftp:
        write_at(sftp, "/tamper.bin", [(0, b"secret data"), (FAR, b"Z")])
        version = current_version(daemon, "tamper.bin")
        holes = version["holes"]
        assert holes and holes.startswith("1-"), holes
        for edited, offset in (("0" + holes[1:], 0), (None, 3 * GIB)):
            with database(daemon) as db:
                db.execute("UPDATE versions SET holes = ? WHERE id = ?", (edited, version["id"]))
            with pytest.raises(IOError, match="integrity"):
                read_at(sftp, "/tamper.bin", offset, 11)
            r = range_get(daemon, "/tamper.bin", offset, offset + 10)
            assert r.status == 500 or r.returncode != 0, (r.status, r.body)
            assert r.body not in (bytes(11), b"secret data"), r.body
        with database(daemon) as db:
            db.execute("UPDATE versions SET holes = ? WHERE id = ?", (holes, version["id"]))
        assert read_at(sftp, "/tamper.bin", 0, 11) == b"secret data"


def _staged_bytes(daemon) -> int:
    total = 0
    for p in daemon.staging_dir.iterdir():
        try:
            total += p.stat().st_size
        except FileNotFoundError:
            pass
    return total


def test_disconnect_stops_a_base_copy_at_once(daemon):
    """Reopening a large file and writing past its end copies it: a client that
    leaves meanwhile must stop the copy at once, not when it is done."""
    size = 256 * MIB
    local = daemon.path("base.bin")
    with open(local, "wb") as f:
        for _ in range(size // MIB):
            f.write(os.urandom(MIB))
    assert daemon.run_sftp(USER, [f"put {q(local)} /base.bin"]).returncode == 0
    local.unlink()
    with sftp_client(daemon) as sftp:
        f = sftp.open("/base.bin", "r+")
        f.seek(size + 10)
        f.set_pipelined(True)
        f.write(b"X")          # the daemon now copies 256 MiB before it can answer
        f.flush()
        deadline = time.monotonic() + TIMEOUT
        while _staged_bytes(daemon) < 8 * MIB and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _staged_bytes(daemon) >= 8 * MIB, "the copy did not start"
    at_leave = _staged_bytes(daemon)   # the connection is closed now
    peak, deadline = at_leave, time.monotonic() + TIMEOUT
    while list(daemon.staging_dir.iterdir()) and time.monotonic() < deadline:
        peak = max(peak, _staged_bytes(daemon))
        time.sleep(0.002)
    assert not list(daemon.staging_dir.iterdir()), "the upload was not discarded"
    # Stopping at once still copies what the daemon's threads do before its transport
    # thread gets to run (~40 MiB here); going on copies all of the remaining ~240 MiB.
    assert peak - at_leave < size // 2, f"{(peak - at_leave) / MIB:.0f} MiB copied after " \
                                        "the client left"
    assert daemon.running


# -- limits ---------------------------------------------------------------------------

def put_over_webdav(daemon, path: str, data_file, *args):
    return daemon.request("alice", "PUT", path, "-T", data_file, *args)


def test_max_file_size_over_sftp(limited):
    with sftp_client(limited, "alice") as sftp:
        write_at(sftp, "/limit.bin", [(0, b"first version")])
        with pytest.raises(IOError, match="too large"):
            write_at(sftp, "/limit.bin", [(10 * MIB, b"X")])
        with pytest.raises(IOError, match="too large"):
            write_at(sftp, "/new-limit.bin", [(10 * MIB - 1, b"XY")])
        write_at(sftp, "/edge.bin", [(10 * MIB - 1, b"X")])    # exactly at the limit
        assert read_at(sftp, "/limit.bin", 0, 100) == b"first version"
        with pytest.raises(IOError):
            sftp.stat("/new-limit.bin")


def test_max_file_size_over_webdav(limited):
    big = limited.path("11mib.bin")
    big.write_bytes(os.urandom(11 * MIB))
    small = limited.path("small.txt")
    small.write_bytes(b"first version")
    assert put_over_webdav(limited, "/dav-limit.bin", small).status == 201
    began = time.monotonic()
    r = put_over_webdav(limited, "/dav-limit.bin", big)      # refused by Content-Length
    assert r.status == 413, (r.status, r.stderr)
    assert time.monotonic() - began < TIMEOUT
    r = put_over_webdav(limited, "/dav-limit.bin", big, "-H", "Transfer-Encoding: chunked")
    assert r.status == 413, (r.status, r.stderr)           # refused mid-stream
    assert limited.request("alice", "GET", "/dav-limit.bin").body == b"first version"
    assert put_over_webdav(limited, "/dav-new.bin", big).status == 413
    assert limited.request("alice", "GET", "/dav-new.bin").status == 404
    assert not list(limited.staging_dir.iterdir())


def test_reserve_refuses_uploads_and_reads_go_on(limited):
    with sftp_client(limited, "alice") as sftp:
        write_at(sftp, "/keep.txt", [(0, b"kept")])
    local = limited.path("new.txt")
    local.write_bytes(b"new content")
    limited.stop()
    limited.set_options("storage", reserve="99.99%")
    limited.start()
    try:
        with sftp_client(limited, "alice") as sftp:
            with pytest.raises(IOError, match="not enough free space"):
                write_at(sftp, "/keep.txt", [(0, b"replaced")])
            with pytest.raises(IOError, match="not enough free space"):
                write_at(sftp, "/fresh.txt", [(0, b"new")])
            assert read_at(sftp, "/keep.txt", 0, 100) == b"kept"
        assert put_over_webdav(limited, "/keep.txt", local).status == 507
        assert put_over_webdav(limited, "/fresh.txt", local).status == 507
        assert limited.request("alice", "GET", "/keep.txt").body == b"kept"
        rows = json.loads(limited.cli("versions", "list", "/acme/keep.txt", "--json",
                                      check=True).stdout)
        assert len(rows) == 1 and rows[0]["current"], rows
        assert not list(limited.staging_dir.iterdir())
        df = limited.run_sftp("alice", ["df"])     # what is kept back is not offered
        assert df.returncode == 0, df.stderr
        size, used, avail = df.stdout.decode().splitlines()[-1].split()[:3]
        assert int(avail) == 0 < int(size)
    finally:
        limited.stop()
        limited.set_options("storage", reserve="5%")
        limited.start()


# -- keyed digests ----------------------------------------------------------------------

def test_database_holds_no_plain_sha256(daemon):
    contents = {"/digest-sftp.bin": os.urandom(300_000), "/digest-dav.txt": b"a known document"}
    with sftp_client(daemon) as sftp:
        write_at(sftp, "/digest-sftp.bin", [(0, contents["/digest-sftp.bin"])])
    local = daemon.path("known.txt")
    local.write_bytes(contents["/digest-dav.txt"])
    assert put_over_webdav(daemon, "/digest-dav.txt", local).status == 201
    with database(daemon) as db:
        rows = [dict(r) for r in db.execute("SELECT * FROM versions")]
    stored = [open(p, "rb").read() for p in daemon.data_dir.glob("strongroom.db*")]
    for path, data in contents.items():
        plain = hashlib.sha256(data)
        assert not any(plain.hexdigest() in str(v) for row in rows for v in row.values()), path
        for blob in stored:
            assert plain.hexdigest().encode() not in blob and plain.digest() not in blob, path
    listed = json.loads(daemon.cli("versions", "list", "/acme/digest-dav.txt", "--json",
                                   check=True).stdout)
    assert "sha256" not in listed[0] and listed[0]["digest"], listed


def test_legacy_sha256_is_rekeyed_at_start(daemon):
    data = os.urandom(5000)
    with sftp_client(daemon) as sftp:
        write_at(sftp, "/legacy.bin", [(0, data)])
    version = current_version(daemon, "legacy.bin")
    plain = hashlib.sha256(data).hexdigest()
    daemon.stop()
    with database(daemon) as db:   # as a version written before keyed digests has it
        db.execute("UPDATE versions SET digest = ? WHERE id = ?", (plain, version["id"]))
    daemon.start()
    converted = current_version(daemon, "legacy.bin")["digest"]
    assert converted.startswith("k1:") and plain not in converted, converted
    with sftp_client(daemon) as sftp:
        assert read_at(sftp, "/legacy.bin", 0, 6000) == data
    daemon.restart()   # converting again changes nothing
    assert current_version(daemon, "legacy.bin")["digest"] == converted
