"""The chunked AES-256-GCM blob format and key wrapping.

A blob is a 32-byte header followed by chunks of `chunk_size` plaintext bytes,
each stored as ciphertext + 16-byte tag:

    header = b"SRB1" | chunk_size u32 | nonce_prefix 4 bytes | reserved 4 | blob_id 16 bytes
    chunk i: AES-256-GCM(data_key, nonce = nonce_prefix | i u64,
                         aad = header | i u64 | final u8 [| holes_tag])

Every version gets a fresh random data key, so (key, nonce) pairs never repeat.
The header in the associated data binds chunk size and blob identity; the index
and final flag detect reordering and truncation (the last chunk must carry the
final flag, and a blob always has at least one chunk, possibly empty).

Holes: a whole chunk that was never written is not stored at all (its place in
the file is a file-system hole, so offsets and the length stay as if it were).
The list of hole chunks lives in the database, so the final chunk, which is
always stored, binds it: its associated data ends with holes_tag = SHA-256 of
the list's text. A blob without holes has no holes_tag (the format before holes
existed); a list edited in the database fails the final chunk's authentication.
"""
import hashlib
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap, aes_key_unwrap, aes_key_wrap)

from strongroom.providers.base import BytesLike
from strongroom.providers.errors import CorruptData

MAGIC = b"SRB1"
HEADER_SIZE = 32
TAG_SIZE = 16
KEY_SIZE = 32


def make_header(chunk_size: int, blob_id: bytes) -> bytes:
    return MAGIC + struct.pack(">I", chunk_size) + os.urandom(4) + bytes(4) + blob_id


def parse_header(header: bytes) -> int:
    """Return the chunk size recorded in `header`; raise CorruptData if malformed."""
    if len(header) != HEADER_SIZE or header[:4] != MAGIC:
        raise CorruptData("blob header is missing or damaged")
    chunk_size: int = struct.unpack(">I", header[4:8])[0]
    if not 4096 <= chunk_size <= 16 * 1024 * 1024:
        raise CorruptData("blob header records an impossible chunk size")
    return chunk_size


def holes_tag(holes: str | None) -> bytes:
    """What the final chunk's associated data binds of a hole list: nothing for none."""
    if not holes:
        return b""
    return hashlib.sha256(b"strongroom holes v1\0" + holes.encode("ascii")).digest()


class ChunkCipher:
    """Encrypts and decrypts the chunks of one blob."""

    def __init__(self, data_key: bytes, header: bytes):
        self._aead = AESGCM(data_key)
        self._header = header
        self._prefix = header[8:12]

    def _nonce_aad(self, index: int, final: bool, holes: bytes) -> tuple[bytes, bytes]:
        idx = struct.pack(">Q", index)
        flag = b"\x01" + holes if final else b"\x00"
        return self._prefix + idx, self._header + idx + flag

    def seal(self, index: int, plaintext: BytesLike, final: bool, holes: bytes = b"") -> bytes:
        """`holes`: the blob's holes_tag, for the final chunk."""
        nonce, aad = self._nonce_aad(index, final, holes)
        return self._aead.encrypt(nonce, plaintext, aad)

    def open(self, index: int, ciphertext: bytes, final: bool, holes: bytes = b"") -> bytes:
        nonce, aad = self._nonce_aad(index, final, holes)
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise CorruptData(f"chunk {index} failed authentication") from None


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_key(kek: bytes, key: bytes) -> bytes:
    """RFC 3394 AES key wrap: authenticated, deterministic, the standard for wrapping keys."""
    return aes_key_wrap(kek, key)


def unwrap_key(kek: bytes, wrapped: bytes) -> bytes:
    try:
        return aes_key_unwrap(kek, wrapped)
    except InvalidUnwrap:
        raise CorruptData("a wrapped key does not unwrap with this key (wrong master key?)") from None
