"""Keyed digests of version contents.

A version's digest tells those who hold its client's key whether two contents are
the same, and nobody else: with only the database, a known document cannot be
confirmed (a plain SHA-256 would allow that). The key is derived from the client
key (BLAKE3 derive_key mode) and never stored. The digest is keyed BLAKE3 over one
entry per stored chunk or run of hole chunks, in order, so holes cost nothing to
hash (a 1 TiB sparse file hashes its stored chunks only):

    stored chunk:  0x01 | keyed BLAKE3 of the chunk's plaintext (leaf key, 32 bytes)
    hole run:      0x00 | first chunk u64 | number of chunks u64   (runs merged)
    end:           0x02 | size u64 | chunk size u32

Stored as "b3:" + 64 hex digits. Versions written before this scheme held a plain
SHA-256; `rekey_legacy` turns one into "k1:" + keyed BLAKE3 of it, which needs the
key like any other digest.
"""
import struct

from blake3 import blake3

from strongroom.providers.base import BytesLike

SCHEME = "b3"
LEGACY = "k1"
_CLIENT_CONTEXT = "strongroom 2026-12-01 version digest key"
_LEAF_CONTEXT = "strongroom 2026-12-01 version digest chunk key"


def client_digest_key(client_key: bytes) -> bytes:
    """The digest key of a client: derived from its key, never stored."""
    return blake3(client_key, derive_key_context=_CLIENT_CONTEXT).digest()


class ContentDigest:
    """Fed the chunks of one blob in order (holes included); `finish` gives the digest."""

    def __init__(self, key: bytes):
        self._outer = blake3(key=key)
        self._leaf_key = blake3(key, derive_key_context=_LEAF_CONTEXT).digest()
        self._hole_start = self._holes = 0   # the run of holes not yet entered

    def chunk(self, plaintext: BytesLike) -> None:
        self._enter_holes()
        self._outer.update(b"\x01" + blake3(plaintext, key=self._leaf_key).digest())

    def hole(self, first: int, count: int) -> None:
        if self._holes and self._hole_start + self._holes == first:
            self._holes += count
            return
        self._enter_holes()
        self._hole_start, self._holes = first, count

    def unhole_last(self) -> None:
        """The last chunk of the pending hole run is stored after all (the final chunk)."""
        self._holes -= 1

    def _enter_holes(self) -> None:
        if self._holes:
            self._outer.update(b"\x00" + struct.pack(">QQ", self._hole_start, self._holes))
            self._holes = 0

    def finish(self, size: int, chunk_size: int) -> str:
        self._enter_holes()
        self._outer.update(b"\x02" + struct.pack(">QI", size, chunk_size))
        return f"{SCHEME}:{self._outer.hexdigest()}"


def of_bytes(key: bytes, data: bytes, chunk_size: int) -> str:
    """The digest of `data` written in one piece (no holes), as a writer computes it."""
    d = ContentDigest(key)
    view = memoryview(data)
    last = max(0, (len(data) - 1) // chunk_size)
    for i in range(last + 1):
        d.chunk(view[i * chunk_size:(i + 1) * chunk_size])
    return d.finish(len(data), chunk_size)


def is_keyed(digest: str) -> bool:
    """False for a plain SHA-256 left from before keyed digests."""
    return ":" in digest


def rekey_legacy(key: bytes, sha256_hex: str) -> str:
    """The keyed digest replacing a legacy plain SHA-256 (hex) of a version's content."""
    return f"{LEGACY}:" + blake3(b"legacy sha256\0" + sha256_hex.encode("ascii"),
                                 key=key).hexdigest()
