"""The encrypted chunked blob store: round trips, tamper detection, abort, memory."""
import hashlib
import os
import random
import tracemalloc

import pytest

from strongroom.providers import crypto, digest
from strongroom.providers.errors import CorruptData
from strongroom.providers.local import LocalProvider

CHUNK = 64 * 1024
STRIDE = CHUNK + crypto.TAG_SIZE
H = crypto.HEADER_SIZE
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5]
DIGEST_KEY = bytes(range(32))


@pytest.fixture
def store(tmp_path):
    return LocalProvider(tmp_path / "blobs", CHUNK)


@pytest.fixture
def key():
    return crypto.new_key()


def write_blob(store, key, data: bytes, block: int = 10_000) -> str:
    writer = store.create_blob(key, DIGEST_KEY)
    for i in range(0, len(data), block):
        writer.write(data[i:i + block])
    blob_id = writer.commit()
    writer.settle()
    return blob_id


def read_all(store, blob_id, key, size) -> bytes:
    reader = store.open_blob(blob_id, key, size)
    try:
        return reader.read(0, size + 10)
    finally:
        reader.close()


def blob_path(store, blob_id):
    return store.root / blob_id[:2] / blob_id


def edit(store, blob_id, change) -> None:
    path = blob_path(store, blob_id)
    path.write_bytes(change(bytearray(path.read_bytes())))


def flip(offset: int):
    def change(buf):
        buf[offset] ^= 0x01
        return buf
    return change


def assert_refused(store, blob_id, key, size, data) -> None:
    """Reading everything must raise CorruptData; altered bytes must never come back."""
    with pytest.raises(CorruptData):
        out = read_all(store, blob_id, key, size)
        assert out == data, "tampered blob returned altered bytes"


# -- round trips ---------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
def test_round_trip(store, key, size):
    data = os.urandom(size)
    blob_id = write_blob(store, key, data)
    assert read_all(store, blob_id, key, size) == data
    assert list(store.blob_ids()) == [blob_id]
    assert not list(store.staging.iterdir())


@pytest.mark.parametrize("size", SIZES)
def test_random_offset_reads(store, key, size):
    data = os.urandom(size)
    blob_id = write_blob(store, key, data)
    rng = random.Random(size)
    reader = store.open_blob(blob_id, key, size)
    try:
        for _ in range(200):
            offset = rng.randint(0, size + 3)
            n = rng.choice([0, 1, 7, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3])
            assert reader.read(offset, n) == data[offset:offset + n], (offset, n)
    finally:
        reader.close()


@pytest.mark.parametrize("block", [1, 4095, CHUNK, CHUNK + 1, 1024 * 1024])
def test_write_block_size_does_not_matter(store, key, block):
    data = os.urandom(3 * CHUNK + 5)
    writer = store.create_blob(key, DIGEST_KEY)
    for i in range(0, len(data), block):
        writer.write(data[i:i + block])
    assert writer.size == len(data)
    blob_id = writer.commit()
    assert read_all(store, blob_id, key, len(data)) == data
    expected_len = H + 4 * crypto.TAG_SIZE + len(data)
    assert blob_path(store, blob_id).stat().st_size == expected_len


@pytest.mark.parametrize("size", SIZES)
def test_digest_is_keyed_and_of_plaintext(store, key, size):
    data = os.urandom(size)
    writer = store.create_blob(key, DIGEST_KEY)
    writer.write(data)
    writer.commit()  # the digest is complete once everything is sealed
    assert writer.digest() == digest.of_bytes(DIGEST_KEY, data, CHUNK)
    assert writer.digest().startswith("b3:") and writer.holes() is None
    assert digest.of_bytes(bytes(32), data, CHUNK) != writer.digest()
    assert hashlib.sha256(data).hexdigest() not in writer.digest()


def test_plaintext_not_on_disk(store, key):
    data = b"plain-marker-" * 20000
    blob_id = write_blob(store, key, data)
    assert b"plain-marker-" not in blob_path(store, blob_id).read_bytes()


# -- tampering -------------------------------------------------------------------

SIZE = 3 * CHUNK + 5          # chunks 0..2 full, chunk 3 holds 5 bytes (the final one)
LAST = H + 3 * STRIDE         # offset of the final chunk

FLIPS = {
    **{f"header-{i}": i for i in range(H)},
    "chunk0-first-byte": H,
    "middle-chunk": H + STRIDE + CHUNK // 2,
    "middle-chunk-tag": H + STRIDE + CHUNK + 3,
    "chunk0-tag-last-byte": H + STRIDE - 1,
    "last-chunk-data": LAST + 2,
    "last-chunk-tag": LAST + 5 + 7,
    "last-byte": H + 4 * crypto.TAG_SIZE + SIZE - 1,
}


@pytest.mark.parametrize("offset", FLIPS.values(), ids=FLIPS.keys())
def test_flipped_byte_is_detected(store, key, offset):
    data = os.urandom(SIZE)
    blob_id = write_blob(store, key, data)
    edit(store, blob_id, flip(offset))
    assert_refused(store, blob_id, key, SIZE, data)


@pytest.mark.parametrize("offset", [
    pytest.param(10, id="nonce-prefix"),
    pytest.param(H + 3, id="empty-chunk-tag")])
def test_empty_blob_tampering_is_detected(store, key, offset):
    blob_id = write_blob(store, key, b"")
    edit(store, blob_id, flip(offset))
    assert_refused(store, blob_id, key, 0, b"")


def test_flip_only_poisons_its_own_chunk(store, key):
    """Seekable reads: an intact chunk still reads, the damaged one never does."""
    data = os.urandom(SIZE)
    blob_id = write_blob(store, key, data)
    edit(store, blob_id, flip(H + STRIDE + 5))
    reader = store.open_blob(blob_id, key, SIZE)
    try:
        assert reader.read(0, CHUNK) == data[:CHUNK]
        with pytest.raises(CorruptData):
            reader.read(CHUNK + 100, 10)
    finally:
        reader.close()


def _swap_chunks(buf):
    a, b = buf[H:H + STRIDE], buf[H + STRIDE:H + 2 * STRIDE]
    return buf[:H] + b + a + buf[H + 2 * STRIDE:]


STRUCTURAL = {
    "truncate-one-chunk": (lambda b: b[:-(5 + crypto.TAG_SIZE)], SIZE),
    "truncate-one-byte": (lambda b: b[:-1], SIZE),
    "append-bytes": (lambda b: b + b"\x00" * 16, SIZE),
    "append-chunk": (lambda b: b + b[H:H + STRIDE], SIZE),
    "swap-two-chunks": (_swap_chunks, SIZE),
    # the attacker also lies about the size: the final flag still catches it
    "drop-final-chunk-and-shrink-size": (lambda b: b[:LAST], 3 * CHUNK),
    "cut-mid-chunk-and-shrink-size": (lambda b: b[:H + STRIDE + 100], CHUNK + 100 - 16),
}


@pytest.mark.parametrize("change,claimed", STRUCTURAL.values(), ids=STRUCTURAL.keys())
def test_structural_tampering_is_detected(store, key, change, claimed):
    data = os.urandom(SIZE)
    blob_id = write_blob(store, key, data)
    edit(store, blob_id, change)
    assert_refused(store, blob_id, key, claimed, data)


def test_header_swapped_between_blobs_is_detected(store, key):
    data = os.urandom(SIZE)
    first, second = write_blob(store, key, data), write_blob(store, key, data)
    other_header = blob_path(store, second).read_bytes()[:H]
    edit(store, first, lambda b: other_header + b[H:])
    assert_refused(store, first, key, SIZE, data)


def test_missing_blob_is_corrupt(store, key):
    blob_id = write_blob(store, key, b"x")
    blob_path(store, blob_id).unlink()
    with pytest.raises(CorruptData):
        store.open_blob(blob_id, key, 1)


@pytest.mark.parametrize("size", [0, 1, SIZE])
def test_wrong_key_fails(store, key, size):
    blob_id = write_blob(store, key, os.urandom(size))
    with pytest.raises(CorruptData):
        read_all(store, blob_id, crypto.new_key(), size)


def test_wrapped_key_unwraps_only_with_its_kek():
    kek, data_key = crypto.new_key(), crypto.new_key()
    wrapped = crypto.wrap_key(kek, data_key)
    assert crypto.unwrap_key(kek, wrapped) == data_key
    with pytest.raises(CorruptData):
        crypto.unwrap_key(crypto.new_key(), wrapped)


# -- abort, staging, memory ----------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 3 * CHUNK + 5])
def test_abort_leaves_nothing(store, key, size):
    writer = store.create_blob(key, DIGEST_KEY)
    writer.write(os.urandom(size))
    assert list(store.staging.iterdir())
    writer.abort()
    writer.abort()  # idempotent
    assert not list(store.staging.iterdir())
    assert not list(store.blob_ids())
    assert not (store.root / writer.blob_id[:2] / writer.blob_id).exists()


def test_uncommitted_blob_is_only_in_staging(store, key):
    writer = store.create_blob(key, DIGEST_KEY)
    writer.write(os.urandom(CHUNK * 2))
    assert not list(store.blob_ids())
    assert len(list(store.staging.iterdir())) == 1
    assert store.clean_staging() == []     # still being written (service/test_staging_owner.py)
    writer.abort()
    assert not list(store.staging.iterdir())


def test_writer_memory_is_bounded(tmp_path, key):
    store = LocalProvider(tmp_path / "blobs", 256 * 1024)
    block = os.urandom(1024 * 1024)
    tracemalloc.start()
    try:
        writer = store.create_blob(key, DIGEST_KEY)
        for _ in range(64):
            writer.write(block)
        writer.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert writer.size == 64 * 1024 * 1024
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


def test_reader_memory_is_bounded(tmp_path, key):
    store = LocalProvider(tmp_path / "blobs", 256 * 1024)
    block = os.urandom(1024 * 1024)
    writer = store.create_blob(key, DIGEST_KEY)
    for _ in range(32):
        writer.write(block)
    blob_id = writer.commit()
    tracemalloc.start()
    try:
        reader = store.open_blob(blob_id, key, 32 * 1024 * 1024)
        for i in range(32):
            assert reader.read(i * len(block), len(block)) == block
        reader.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
