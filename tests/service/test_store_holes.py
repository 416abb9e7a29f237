"""Holes in the blob format: skipped whole chunks are neither encrypted nor written,
read as zeros, cost nothing to digest, and their list is authenticated."""
import errno
import os
import random
import tracemalloc

import pytest

from strongroom.providers import crypto, digest, streams
from strongroom.providers.errors import CorruptData, NoSpace, StorageError
from strongroom.providers.local import LocalProvider

CHUNK = 64 * 1024
KEY = bytes(range(32))
GIB = 1 << 30


@pytest.fixture
def store(tmp_path):
    return LocalProvider(tmp_path / "blobs", CHUNK)


@pytest.fixture
def key():
    return crypto.new_key()


def blob_path(store, blob_id):
    return store.root / blob_id[:2] / blob_id


def write(store, key, steps):
    """Run ("w", bytes) and ("s", n) steps on a new writer; commit; return it."""
    writer = store.create_blob(key, KEY)
    for kind, arg in steps:
        writer.write(arg) if kind == "w" else writer.skip(arg)
    writer.commit()
    return writer


def model(steps) -> bytes:
    return b"".join(arg if kind == "w" else bytes(arg) for kind, arg in steps)


def read_all(store, writer, key, holes="same") -> bytes:
    reader = store.open_blob(writer.blob_id, key, writer.size,
                             writer.holes() if holes == "same" else holes)
    try:
        return reader.read(0, writer.size + 1)
    finally:
        reader.close()


# -- layout ------------------------------------------------------------------------

@pytest.mark.parametrize("steps,holes", [
    ([("s", 3 * CHUNK), ("w", b"x")], "0-2"),
    ([("w", b"a"), ("s", 5 * CHUNK - 1)], "1-3"),          # the final chunk is stored
    ([("s", 4 * CHUNK)], "0-2"),
    ([("w", b"a" * CHUNK), ("s", 2 * CHUNK), ("w", b"b")], "1-2"),
    ([("w", b"a"), ("s", CHUNK), ("w", b"b")], None),      # no whole chunk skipped
    ([("s", CHUNK), ("s", CHUNK), ("w", b"x"), ("s", 3 * CHUNK), ("w", b"y")], "0-1,3-4"),
    ([("s", 10)], None),
    ([("s", 0)], None),
])
def test_skipped_whole_chunks_are_holes(store, key, steps, holes):
    writer = write(store, key, steps)
    assert writer.holes() == holes
    assert writer.size == len(model(steps))
    assert read_all(store, writer, key) == model(steps)
    last = max(0, (writer.size - 1) // CHUNK)
    expected_len = crypto.HEADER_SIZE + (last + 1) * crypto.TAG_SIZE + writer.size
    assert blob_path(store, writer.blob_id).stat().st_size == expected_len


def test_random_writes_and_skips_match_a_model(store, key):
    rng = random.Random(11)
    for _ in range(30):
        steps = [("w", rng.randbytes(rng.randint(0, 2 * CHUNK))) if rng.random() < 0.5
                 else ("s", rng.choice([0, 1, CHUNK - 1, CHUNK, 3 * CHUNK + 7, 5 * CHUNK]))
                 for _ in range(rng.randint(1, 8))]
        writer = write(store, key, steps)
        data = model(steps)
        reader = store.open_blob(writer.blob_id, key, writer.size, writer.holes())
        try:
            for _ in range(20):
                offset, n = rng.randint(0, len(data) + 3), rng.randint(0, 3 * CHUNK)
                assert reader.read(offset, n) == data[offset:offset + n]
            for a, b in reader.hole_ranges():
                assert data[a:b] == bytes(b - a)
        finally:
            reader.close()


def test_six_gib_of_zeros_take_kilobytes_and_no_time(store, key):
    tracemalloc.start()
    try:
        writer = write(store, key, [("w", b"head"), ("s", 6 * GIB), ("w", b"X")])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024
    assert writer.size == 6 * GIB + 5
    # chunk 0 ("head" and zeros) and the final chunk are stored, nothing between
    assert blob_path(store, writer.blob_id).stat().st_blocks * 512 < 3 * CHUNK
    reader = store.open_blob(writer.blob_id, key, writer.size, writer.holes())
    try:
        assert reader.read(0, 6) == b"head\0\0"
        assert reader.read(3 * GIB, 100) == bytes(100)
        assert reader.read(6 * GIB + 2, 10) == b"\0\0X"
    finally:
        reader.close()


def test_reopen_for_reading_keeps_holes(store, key):
    writer = store.create_blob(key, KEY)
    writer.write(b"a")
    writer.skip(4 * CHUNK)
    writer.write(b"b")
    reader = writer.reopen_for_reading()
    try:
        assert reader.hole_ranges() == [(CHUNK, 4 * CHUNK)]
        assert reader.read(0, 4 * CHUNK + 2) == b"a" + bytes(4 * CHUNK) + b"b"
    finally:
        reader.close()
    assert not list(store.staging.iterdir())


def test_too_many_separate_holes_are_refused(store, key, monkeypatch):
    monkeypatch.setattr(streams.holes, "MAX_RUNS", 3)
    writer = store.create_blob(key, KEY)
    for _ in range(3):
        writer.skip(CHUNK)
        writer.write(b"x" * CHUNK)
    with pytest.raises(StorageError, match="at most 3"):
        writer.skip(CHUNK)
    writer.abort()


# -- digest --------------------------------------------------------------------------

def test_digest_does_not_depend_on_how_it_was_written(store, key):
    data = os.urandom(3 * CHUNK + 11)
    one = write(store, key, [("w", data)])
    many = write(store, key, [("w", data[i:i + 999]) for i in range(0, len(data), 999)])
    assert one.digest() == many.digest() == digest.of_bytes(KEY, data, CHUNK)
    holes_once = write(store, key, [("w", b"a"), ("s", 6 * CHUNK), ("w", b"b")])
    holes_split = write(store, key, [("w", b"a"), ("s", CHUNK), ("s", 2 * CHUNK + 5),
                                     ("s", 3 * CHUNK - 5), ("w", b"b")])
    assert holes_once.holes() == holes_split.holes()
    assert holes_once.digest() == holes_split.digest()
    other = write(store, key, [("w", b"a"), ("s", 6 * CHUNK), ("w", b"c")])
    assert other.digest() != holes_once.digest()


# -- the hole list is authenticated ------------------------------------------------------

def sparse_blob(store, key):
    """Chunk 0 and 5 stored (secret data, final), 1..4 holes."""
    return write(store, key, [("w", b"secret data" * 100), ("s", 5 * CHUNK), ("w", b"end")])


@pytest.mark.parametrize("edited", [
    pytest.param("0-4", id="stored-chunk-marked-hole"),
    pytest.param("2-4", id="hole-dropped"),
    pytest.param("1-3", id="hole-shortened"),
    pytest.param("1-5", id="final-chunk-marked-hole"),
    pytest.param("1-2,3-4", id="same-holes-other-text"),
    pytest.param("1-4,", id="malformed"),
    pytest.param("4-1", id="backwards"),
])
def test_edited_hole_list_is_refused(store, key, edited):
    writer = sparse_blob(store, key)
    assert writer.holes() == "1-4"
    with pytest.raises(CorruptData):
        store.open_blob(writer.blob_id, key, writer.size, edited)


def test_hole_list_removed_never_serves_zeros(store, key):
    writer = sparse_blob(store, key)
    reader = store.open_blob(writer.blob_id, key, writer.size, None)
    try:
        assert reader.read(0, 11) == b"secret data"
        with pytest.raises(CorruptData):
            reader.read(2 * CHUNK, 10)      # the file's hole is no chunk
        with pytest.raises(CorruptData):
            reader.read(writer.size - 3, 3)  # the final chunk binds the hole list
    finally:
        reader.close()


def test_hole_list_added_to_a_blob_without_holes_is_refused(store, key):
    writer = write(store, key, [("w", os.urandom(6 * CHUNK))])
    with pytest.raises(CorruptData):
        store.open_blob(writer.blob_id, key, writer.size, "1-4")


# -- a full disk -----------------------------------------------------------------------

def test_full_disk_is_no_space_and_leaves_nothing(store, key, monkeypatch):
    real = os.pwrite

    def full(fd, data, offset):
        if offset >= crypto.HEADER_SIZE:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data, offset)

    monkeypatch.setattr(streams.os, "pwrite", full)
    writer = store.create_blob(key, KEY)
    with pytest.raises(NoSpace):
        for _ in range(8):
            writer.write(os.urandom(2 * CHUNK))
        writer.commit()
    writer.abort()
    assert not list(store.staging.iterdir()) and not list(store.blob_ids())
