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
    holes: bool = False      # skip() stores nothing for whole chunks of zeros


class BlobWriter(ABC):
    """Streams one new blob. Nothing is visible until `commit()` returns."""

    size: int          # plaintext bytes written so far
    blob_id: str

    @abstractmethod
    def write(self, data) -> None: ...

    @abstractmethod
    def skip(self, n: int) -> None:
        """Go on as if `n` zero bytes were written, in time and space independent of
        `n` where the provider has holes (then `holes()` records them)."""

    @abstractmethod
    def commit(self) -> str:
        """Seal, make durable (fsync) and publish the blob; return its id.
        Raises NoSpace when the disk is full."""

    @abstractmethod
    def abort(self) -> None:
        """Discard everything written; safe to call more than once."""

    @abstractmethod
    def digest(self) -> str:
        """The keyed digest of the content (providers.digest); known after commit()."""

    @abstractmethod
    def holes(self) -> str | None:
        """The blob's hole list (provider-defined text, None for none), to be stored
        with the version and handed back to open_blob; final after commit()."""


class BlobReader(ABC):
    """Random-access reads of one committed blob; each read is authenticated."""

    @abstractmethod
    def read(self, offset: int, size: int) -> bytes:
        """Up to `size` bytes at `offset` (fewer only at end of blob)."""

    def hole_ranges(self) -> list[tuple[int, int]]:
        """Ascending half-open byte ranges that read as zeros and are not stored
        (never the last byte: a blob's end is always stored)."""
        return []

    @abstractmethod
    def close(self) -> None: ...


class StorageProvider(ABC):
    capabilities: Capabilities

    @abstractmethod
    def create_blob(self, data_key: bytes, digest_key: bytes) -> BlobWriter:
        """A writer encrypting under `data_key` and digesting under `digest_key`."""

    @abstractmethod
    def open_blob(self, blob_id: str, data_key: bytes, size: int,
                  holes: str | None = None) -> BlobReader:
        """`holes`: what the writer's holes() said. Raises CorruptData if the blob
        does not match size and holes."""

    @abstractmethod
    def delete_blob(self, blob_id: str) -> None: ...

    @abstractmethod
    def blob_ids(self) -> Iterator[str]:
        """Every committed blob, for consistency checks."""

    @abstractmethod
    def space(self) -> tuple[int, int]:
        """(total bytes, bytes free) of the underlying storage."""

    @abstractmethod
    def check_writable(self) -> None:
        """Raise OSError unless a new blob could be started now (a health check:
        it leaves nothing behind)."""

    @abstractmethod
    def clean_staging(self) -> int:
        """Remove leftovers of uploads that never committed; return how many."""
