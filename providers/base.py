"""The storage provider interface: everything the service layer and the doctor use.

A provider stores immutable blobs (one per file version) and knows nothing of
paths, users or the database. The service layer asks it for a writer, commits
the writer (blob durable), then records the version in the database, then settles
the writer (a blob published by a process that dies before that is deleted at the
next clean_staging unless a version names it). Callers
outside providers/ use only what these classes declare (tests/test_provider_interface.py
runs the service against a provider that exposes nothing else), so another
provider (object storage) implements exactly this.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING, Iterator, TypeAlias

if TYPE_CHECKING:
    from strongroom.config import Config

# What a writer takes: the protocol adapters hand over bytes, the service slices of them.
BytesLike: TypeAlias = bytes | bytearray | memoryview


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do, asked before an operation rather than failing late."""
    # create_scratch() and BlobWriter.reopen_for_reading() work: an upload may rewrite
    # parts it already wrote (SFTP writes before the current end). Without it such a
    # write is refused as unsupported, and uploads must be written in order.
    random_write: bool
    # skip() stores nothing for whole chunks of zeros (BlobWriter.holes() lists them):
    # a gap costs no space. Without it the service writes a gap's zeros as data.
    holes: bool = False


class BlobWriter(ABC):
    """Streams one new blob. Nothing is visible until `commit()` returns."""

    size: int          # plaintext bytes written so far
    blob_id: str

    @abstractmethod
    def write(self, data: BytesLike) -> None: ...

    @abstractmethod
    def skip(self, n: int) -> None:
        """Go on as if `n` zero bytes were written, in time and space independent of
        `n` where the provider has holes (then `holes()` records them)."""

    @abstractmethod
    def commit(self) -> str:
        """Seal, make durable (fsync) and publish the blob; return its id.
        Raises NoSpace when the disk is full. Until `settle()` the blob is marked
        as being published: should this process die first, the next
        clean_staging(referenced=...) deletes it unless a version names it."""

    @abstractmethod
    def settle(self) -> None:
        """After commit(), once the transaction recording the blob's version has
        ended (committed; or failed, and the blob was deleted): drop the mark.
        Safe to call more than once, and before commit (then it does nothing)."""

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

    def reopen_for_reading(self) -> "BlobReader":
        """Only with `capabilities.random_write`: end the writer without publishing
        anything, and read back what it was given (holes included). The reader
        discards the unpublished data when closed."""
        raise NotImplementedError("this provider cannot read back an unfinished blob")


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


class Scratch(ABC):
    """Private, encrypted space for the chunks a random-access upload rewrites: one
    slot per chunk index, each up to the provider's chunk_size. It never becomes a
    version; it is gone after close() (or a crash, and the next clean_staging())."""

    @abstractmethod
    def put(self, index: int, data: bytes) -> None:
        """Store chunk `index` (replacing what it held)."""

    @abstractmethod
    def get(self, index: int) -> bytes | None:
        """Chunk `index` as last put, None if it never was; CorruptData if tampered."""

    @abstractmethod
    def indices(self) -> list[int]:
        """The chunks put here, ascending."""

    @abstractmethod
    def close(self) -> None:
        """Discard the space; safe to call more than once."""


class StorageProvider(ABC):
    capabilities: Capabilities
    # Plaintext bytes per chunk. Space is used in whole chunks (a write touching part
    # of one stores all of it), holes are whole chunks, and a scratch slot holds one.
    chunk_size: int

    @classmethod
    @abstractmethod
    def from_config(cls, config: "Config") -> "StorageProvider":
        """The provider the `[storage]` options of a loaded Config describe."""

    @abstractmethod
    def create_blob(self, data_key: bytes, digest_key: bytes) -> BlobWriter:
        """A writer encrypting under `data_key` and digesting under `digest_key`."""

    def create_scratch(self) -> Scratch:
        """Only with `capabilities.random_write`: new scratch space for one upload."""
        raise NotImplementedError("this provider has no scratch space for random writes")

    @abstractmethod
    def open_blob(self, blob_id: str, data_key: bytes, size: int,
                  holes: str | None = None) -> BlobReader:
        """`holes`: what the writer's holes() said. Raises CorruptData if the blob
        does not match size and holes."""

    @abstractmethod
    def delete_blob(self, blob_id: str) -> None:
        """Remove a committed blob; no error if it is gone already."""

    @abstractmethod
    def blob_ids(self) -> Iterator[str]:
        """Every committed blob, for consistency checks."""

    @abstractmethod
    def blob_modified(self, blob_id: str) -> float | None:
        """When the blob was last written (seconds since the epoch), None if there is
        no such blob: a blob committed moments ago may not be recorded yet."""

    @abstractmethod
    def space(self) -> tuple[int, int]:
        """(total bytes, bytes free) of the underlying storage."""

    @abstractmethod
    def check_writable(self) -> None:
        """Raise OSError unless a new blob could be started now (a health check:
        it leaves nothing behind)."""

    @abstractmethod
    def staging_files(self) -> list[str]:
        """Names of the unfinished uploads and scratch spaces there are now, sorted:
        those in use and leftovers of processes that died."""

    @abstractmethod
    def clean_staging(self, min_age: float = 0.0,
                      referenced: Callable[[list[str]], set[str]] | None = None) -> list[str]:
        """Remove the leftovers of uploads that never committed, those unchanged for
        at least `min_age` seconds; return their names. What a live process (the
        daemon, a CLI command) is still writing or publishing is never removed.
        Blobs a dead process published but never settled are deleted unless
        `referenced(blob ids)` returns them (a version names them), and their ids
        are returned too; without `referenced` they are left alone. `referenced`
        is asked only about blobs whose publisher is dead."""
