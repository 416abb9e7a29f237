"""Encrypted random-access scratch space for uploads that rewrite earlier parts.

A scratch file holds fixed-size slots, one per chunk index; each slot is
nonce(12) | length(4) | AES-256-GCM(ciphertext + tag), with a fresh random
nonce on every rewrite and the index bound in the associated data. The key
lives only in memory: after a crash the file is unreadable garbage, removed at
the next start with the rest of the staging area. Nothing here is ever a
version; the upload's commit streams the final content into a normal blob.
"""
import os
import struct
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.providers import crypto, staging
from strongroom.providers.base import Scratch
from strongroom.providers.errors import CorruptData, write_failed

_HEAD = 16  # nonce + length


class ScratchChunks(Scratch):
    def __init__(self, path: Path, chunk_size: int) -> None:
        self._path = path
        self._chunk = chunk_size
        self._slot = _HEAD + chunk_size + crypto.TAG_SIZE
        self._aead = AESGCM(crypto.new_key())
        self._present: set[int] = set()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        staging.hold(self._fd)

    def put(self, index: int, data: bytes) -> None:
        if len(data) > self._chunk:
            raise ValueError("scratch chunk larger than the chunk size")
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, data, struct.pack(">Q", index))
        try:
            os.pwrite(self._fd, nonce + struct.pack(">I", len(data)) + sealed,
                      index * self._slot)
        except OSError as e:
            raise write_failed("scratch data", e) from e
        self._present.add(index)

    def indices(self) -> list[int]:
        return sorted(self._present)

    def get(self, index: int) -> bytes | None:
        if index not in self._present:
            return None
        slot = os.pread(self._fd, self._slot, index * self._slot)
        (length,) = struct.unpack(">I", slot[12:16])
        try:
            return self._aead.decrypt(slot[:12], slot[_HEAD:_HEAD + length + crypto.TAG_SIZE],
                                      struct.pack(">Q", index))
        except Exception:
            raise CorruptData(f"scratch chunk {index} failed authentication") from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass
