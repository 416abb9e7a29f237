"""Sparse uploads, size limits, free-space reserve, cancellation and keyed digests in
the service layer, on SQLite and on PostgreSQL."""
import errno
import hashlib
import os

import pytest
from alembic import command
from sqlalchemy import text

from strongroom.appliance.app import App
from strongroom.appliance.db import migrate, rekey
from strongroom.appliance.errors import Cancelled, NoSpace, TooLarge
from strongroom.config.converters import Amount
from strongroom.providers import digest as digests, streams
from tests.support.sessions import PASSWORD, client_session, digest, get, put

GIB, MIB = 1 << 30, 1 << 20
CHUNK = 256 * 1024


@pytest.fixture
def acme(app):
    return client_session(app, "acme")


def version_row(app, session, path):
    entry = session.stat(path)
    with app.db.read() as s:
        return s.execute(text("SELECT * FROM versions WHERE id = :v"),
                         {"v": entry.version_id}).mappings().one()


def on_disk(app, row) -> int:
    blob = app.provider.root / row["blob_id"][:2] / row["blob_id"]
    return blob.stat().st_blocks * 512


def read(session, path, offset, n) -> bytes:
    handle = session.open_read(path)
    try:
        return handle.read(offset, n)
    finally:
        handle.close()


def write(session, path, writes, truncate=True):
    upload = session.open_write(path, truncate=truncate)
    try:
        for offset, data in writes:
            upload.write(offset, data)
        return upload.commit()
    finally:
        upload.abort()


def staging(app) -> list:
    return list(app.provider.staging.iterdir())


# -- holes ---------------------------------------------------------------------------

@pytest.mark.parametrize("second,stored_chunks", [
    pytest.param([], 2, id="one-far-write"),
    pytest.param([(6 * GIB + 1, b"more")], 2, id="resumed-and-appended"),
    pytest.param([(10, b"a"), (5, b"b"), (3 * GIB, b"c")], 3, id="random-access"),
])
def test_far_writes_store_only_what_was_written(app, acme, second, stored_chunks):
    write(acme, "/f.bin", [(0, b"head"), (6 * GIB, b"X")])
    if second:
        write(acme, "/f.bin", second, truncate=False)
    writes = [(0, b"head"), (6 * GIB, b"X"), *second]
    size = max(o + len(d) for o, d in writes)
    row = version_row(app, acme, "/f.bin")
    assert row["size"] == size and row["holes"]
    assert on_disk(app, row) < stored_chunks * CHUNK + 64 * 1024
    for offset in (0, 3, 10, CHUNK - 2, 2 * GIB, 3 * GIB - 1, 6 * GIB - 2, size - 3):
        assert read(acme, "/f.bin", offset, 16) == expected(writes, size, offset, 16), offset
    assert staging(app) == []


def expected(writes, size: int, offset: int, n: int) -> bytes:
    """Bytes [offset, offset + n) of a file made by `writes` in order, zeros elsewhere."""
    out = bytearray(max(0, min(n, size - offset)))
    for at, data in writes:
        for i, byte in enumerate(data):
            if 0 <= at + i - offset < len(out):
                out[at + i - offset] = byte
    return bytes(out)


def test_copy_and_restore_keep_holes(app, acme):
    write(acme, "/f.bin", [(0, b"head"), (6 * GIB, b"X")])
    acme.copy("/f.bin", "/g.bin")
    first = acme.versions("/f.bin")[0].id
    write(acme, "/f.bin", [(0, b"other")])
    acme.restore("/f.bin", first)
    for path in ("/g.bin", "/f.bin"):
        row = version_row(app, acme, path)
        assert row["size"] == 6 * GIB + 1 and on_disk(app, row) < 2 * CHUNK + 64 * 1024
        assert read(acme, path, 6 * GIB - 1, 5) == b"\0X"


def test_zero_length_writes_do_not_extend(acme):
    entry = write(acme, "/f.bin", [(0, b"abc"), (6 * GIB, b""), (3, b"")])
    assert entry.size == 3


# -- limits ------------------------------------------------------------------------

def test_max_file_size_refuses_at_open_and_on_write(app, acme, monkeypatch):
    monkeypatch.setitem(app.config._values["storage"], "max_file_size", 10 * MIB)
    put(acme, "/f.bin", b"first")
    with pytest.raises(TooLarge):
        acme.open_write("/f.bin", size=10 * MIB + 1)
    upload = acme.open_write("/f.bin")
    upload.write(0, b"x" * MIB)
    with pytest.raises(TooLarge, match="10 MiB"):
        upload.write(10 * MIB, b"y")
    with pytest.raises(TooLarge):
        write(acme, "/f.bin", [(10 * MIB - 1, b"yz")], truncate=False)
    write(acme, "/edge.bin", [(10 * MIB - 1, b"z")])
    assert get(acme, "/f.bin") == b"first" and len(acme.versions("/f.bin")) == 1
    assert staging(app) == []


class DiskFilling:
    """The provider's space(), with the free space running out after `calls` calls."""

    def __init__(self, real, calls: int):
        self.real, self.calls = real, calls

    def __call__(self):
        total, free = self.real()
        self.calls -= 1
        return total, free if self.calls >= 0 else 0


def test_reserve_refuses_at_open_and_mid_stream(app, acme, monkeypatch):
    put(acme, "/f.bin", b"first")
    monkeypatch.setitem(app.config._values["storage"], "reserve", Amount(bytes=MIB))
    monkeypatch.setattr(app.provider, "space", DiskFilling(app.provider.space, 1))
    upload = acme.open_write("/f.bin")                 # the one call with room
    sent = 0
    with pytest.raises(NoSpace):
        while sent < 64 * MIB:
            upload.append(b"x" * MIB)
            sent += MIB
    assert sent <= 8 * MIB, "free space was looked at too rarely"
    with pytest.raises(NoSpace):
        acme.open_write("/f.bin")
    assert get(acme, "/f.bin") == b"first" and len(acme.versions("/f.bin")) == 1
    assert staging(app) == []


def test_the_reserve_counts_the_chunks_a_sparse_write_stores(app, acme, monkeypatch):
    """One byte per chunk stores a whole chunk each: what the reserve is told of."""
    monkeypatch.setitem(app.config._values["storage"], "reserve", Amount(bytes=MIB))
    monkeypatch.setattr(app.provider, "space", DiskFilling(app.provider.space, 1))
    upload = acme.open_write("/sparse.bin")
    cs, writes = app.provider.chunk_size, 0
    with pytest.raises(NoSpace):
        while writes < 2000:
            upload.write((writes + 1) * cs - 1, b"y")
            writes += 1
    assert writes * cs <= 8 * MIB, "stored zeros were not counted"
    assert staging(app) == []


def test_a_full_disk_is_no_space_and_keeps_the_previous_version(app, acme, monkeypatch):
    put(acme, "/f.bin", b"first")
    real = os.pwrite

    def full(fd, data, offset):
        if offset > 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data, offset)

    monkeypatch.setattr(streams.os, "pwrite", full)
    with pytest.raises(NoSpace):
        put(acme, "/f.bin", os.urandom(3 * MIB))
    monkeypatch.undo()
    assert get(acme, "/f.bin") == b"first" and staging(app) == []


# -- cancel -----------------------------------------------------------------------------

def test_cancel_stops_a_base_copy_within_a_block(app, acme):
    put(acme, "/base.bin", os.urandom(16 * MIB), block=MIB)
    upload = acme.open_write("/base.bin", truncate=False)
    reads, base_read = [], upload._base.read

    def read_then_leave(offset, n):    # the connection goes away during the third block
        reads.append(offset)
        if len(reads) == 3:
            upload.cancel()
        return base_read(offset, n)

    upload._base.read = read_then_leave
    with pytest.raises(Cancelled):
        upload.write(32 * MIB, b"x")
    assert len(reads) == 3
    assert staging(app) == [] and len(acme.versions("/base.bin")) == 1


# -- keyed digests ----------------------------------------------------------------------

def test_digest_is_keyed_per_client(app, acme):
    beta = client_session(app, "beta")
    data = b"a known document"
    put(acme, "/doc.txt", data)
    put(beta, "/doc.txt", data)
    mine, theirs = acme.stat("/doc.txt").digest, beta.stat("/doc.txt").digest
    assert mine == digest(acme, data) and theirs == digest(beta, data) and mine != theirs
    assert hashlib.sha256(data).hexdigest() not in mine + theirs


def test_legacy_digests_are_rekeyed_once_after_the_upgrade(app, acme, data_dir):
    contents = {f"/f{i}.txt": os.urandom(100 + i) for i in range(5)}
    ids = {path: put(acme, path, data).version_id for path, data in contents.items()}
    command.downgrade(migrate._config(app.db.engine), "0004")   # the schema before ...
    with app.db.write() as s:              # ... keyed digests, with plain SHA-256 ones
        for path, data in contents.items():
            s.execute(text("UPDATE versions SET sha256 = :d WHERE id = :v"),
                      {"d": hashlib.sha256(data).hexdigest(), "v": ids[path]})
    app.close()

    upgraded = App(data_dir)               # migrates, then rekeys
    try:
        with upgraded.db.read() as s:
            wrapped = s.scalar(text("SELECT wrapped_key FROM clients WHERE name = 'acme'"))
        key = upgraded.keyring.digest_key(bytes(wrapped))
        with upgraded.db.read() as s:
            rows = dict(s.execute(text("SELECT id, digest FROM versions")).all())
        assert sorted(rows.values()) == sorted(
            digests.rekey_legacy(key, hashlib.sha256(d).hexdigest()) for d in contents.values())
        assert rekey.rekey_legacy_digests(upgraded.db, upgraded.keyring) == 0
        with upgraded.db.read() as s:
            assert dict(s.execute(text("SELECT id, digest FROM versions")).all()) == rows
        principal = upgraded.auth.password_login("acme-user", PASSWORD, "test", "127.0.0.1")
        session = upgraded.session(principal, "test", "127.0.0.1")
        for path, data in contents.items():
            assert get(session, path) == data
    finally:
        upgraded.close()
