"""The storage provider interface.

A provider stores immutable blobs (one per file version) and knows nothing of
paths, users or the database. The service layer asks it for a writer, commits
the writer (blob durable on disk), then records the version in the database.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do, asked before an operation rather than failing late."""
    seekable_read: bool      # read(offset, n) costs O(n), not O(offset)
    random_write: bool       # create_scratch() exists: uploads may rewrite earlier parts


class BlobWriter(ABC):
    """Streams one new blob. Nothing is visible until `commit()` returns."""

    size: int          # plaintext bytes written so far
    blob_id: str

    @abstractmethod
    def write(self, data) -> None: ...

    @abstractmethod
    def commit(self) -> str:
        """Seal, make durable (fsync) and publish the blob; return its id."""

    @abstractmethod
    def abort(self) -> None:
        """Discard everything written; safe to call more than once."""

    @abstractmethod
    def sha256(self) -> str:
        """Hex SHA-256 of the plaintext; complete only after commit()."""


class BlobReader(ABC):
    """Random-access reads of one committed blob; each read is authenticated."""

    @abstractmethod
    def read(self, offset: int, size: int) -> bytes:
        """Up to `size` bytes at `offset` (fewer only at end of blob)."""

    @abstractmethod
    def close(self) -> None: ...


class StorageProvider(ABC):
    capabilities: Capabilities

    @abstractmethod
    def create_blob(self, data_key: bytes) -> BlobWriter: ...

    @abstractmethod
    def open_blob(self, blob_id: str, data_key: bytes, size: int) -> BlobReader: ...

    @abstractmethod
    def delete_blob(self, blob_id: str) -> None: ...

    @abstractmethod
    def blob_ids(self) -> Iterator[str]:
        """Every committed blob, for consistency checks."""

    @abstractmethod
    def space(self) -> tuple[int, int]:
        """(total bytes, bytes free) of the underlying storage."""

    @abstractmethod
    def clean_staging(self) -> int:
        """Remove leftovers of uploads that never committed; return how many."""
