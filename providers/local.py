"""Encrypted blobs on a local disk.

Layout: BLOB_DIR/ab/<32 hex id> for committed blobs, BLOB_DIR/.staging/<id>.part
for uploads in progress. A staging file is published only after fsync.

Publishing journal. A blob is published before the database records its version
(which may wait for the writer lock), so a process killed in between would leave
a blob no version names. Publishing therefore makes the blob a second name (a hard
link) of its staging file, and the staging name stays, held by its process
(providers.staging), until `settle()`: after the version's transaction ended (it
committed, or it failed and the blob was deleted). A staging file that is also a
published blob and that no process holds is the blob of a process that died
between publishing and settling: `clean_staging` (the daemon's start, `doctor
--repair`) asks `referenced` whether a version names it and deletes it if none
does. That can never delete a blob a committed version refers to: the question is
asked only once its owner is dead (its transaction can no longer commit later; on
PostgreSQL the caller first waits for transactions still finishing), and a blob
a live process (the daemon, a CLI command) is publishing is held, so skipped.
"""
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from strongroom.providers import staging
from strongroom.providers.base import Capabilities, StorageProvider
from strongroom.providers.scratch import ScratchChunks
from strongroom.providers.streams import ChunkedReader, ChunkedWriter

if TYPE_CHECKING:
    from strongroom.config import Config


class LocalProvider(StorageProvider):
    capabilities = Capabilities(random_write=True, holes=True)

    def __init__(self, blob_dir: str | Path, chunk_size: int) -> None:
        self.root = Path(blob_dir)
        self.chunk_size = chunk_size
        self.staging = self.root / ".staging"
        self.staging.mkdir(parents=True, exist_ok=True, mode=0o700)

    @classmethod
    def from_config(cls, config: "Config") -> "LocalProvider":
        return cls(config.storage.blob_dir, config.storage.chunk_size)

    def blob_path(self, blob_id: str) -> Path:
        """Where blob `blob_id` is (or would be) on disk; ValueError for a malformed id."""
        if len(blob_id) != 32 or not all(c in "0123456789abcdef" for c in blob_id):
            raise ValueError(f"bad blob id {blob_id!r}")
        return self.root / blob_id[:2] / blob_id

    def create_blob(self, data_key: bytes, digest_key: bytes) -> ChunkedWriter:
        blob_id = uuid.uuid4().hex
        return ChunkedWriter(self.staging / f"{blob_id}.part", self.blob_path(blob_id),
                             blob_id, data_key, self.chunk_size, digest_key)

    def create_scratch(self) -> ScratchChunks:
        return ScratchChunks(self.staging / f"{uuid.uuid4().hex}.scratch", self.chunk_size)

    def open_blob(self, blob_id: str, data_key: bytes, size: int,
                  holes: str | None = None) -> ChunkedReader:
        return ChunkedReader(self.blob_path(blob_id), data_key, size, holes)

    def delete_blob(self, blob_id: str) -> None:
        try:
            os.unlink(self.blob_path(blob_id))
        except FileNotFoundError:
            pass

    def blob_ids(self) -> Iterator[str]:
        for sub in sorted(self.root.iterdir()):
            if sub.is_dir() and len(sub.name) == 2:
                for f in sorted(sub.iterdir()):
                    yield f.name

    def blob_modified(self, blob_id: str) -> float | None:
        return _mtime(self.blob_path(blob_id))

    def space(self) -> tuple[int, int]:
        st = os.statvfs(self.root)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    def check_writable(self) -> None:
        probe = self.staging / f"{uuid.uuid4().hex}.probe"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        os.unlink(probe)

    def staging_files(self) -> list[str]:
        return sorted(p.name for p in self.staging.iterdir())

    def clean_staging(self, min_age: float = 0.0,
                      referenced: Callable[[list[str]], set[str]] | None = None) -> list[str]:
        """Remove what no process uses any more (providers.staging): a CLI command
        or another process writing now keeps its files, however old they look.
        Blobs published by a process that died before settling them are deleted
        unless `referenced` names them, and their staging names go either way;
        without `referenced` they are left as they are (see the module docstring)."""
        cutoff = time.time() - min_age
        removed: list[str] = []
        unsettled: dict[str, tuple[str, int]] = {}   # blob id -> (staging name, held fd)
        try:
            for name in self.staging_files():
                path = self.staging / name
                if min_age > 0 and not _older(path, cutoff):
                    continue
                fd = staging.take_if_abandoned(path)
                if fd is None:
                    continue
                blob_id = self._published_as(name, fd)
                if blob_id is not None:
                    unsettled[blob_id] = (name, fd)
                    continue
                staging.unlink(path)
                os.close(fd)
                removed.append(name)
            if unsettled and referenced is not None:
                removed += self._settle_dead(unsettled, referenced(sorted(unsettled)))
        finally:
            for _, fd in unsettled.values():
                os.close(fd)
        return removed

    def _published_as(self, name: str, fd: int) -> str | None:
        """The blob id if staging file `name` (open as `fd`) is also a published blob."""
        blob_id = name.removesuffix(".part")
        if not name.endswith(".part"):
            return None
        try:
            same = os.stat(self.blob_path(blob_id)).st_ino == os.fstat(fd).st_ino
            return blob_id if same else None
        except (FileNotFoundError, ValueError):
            return None

    def _settle_dead(self, unsettled: dict[str, tuple[str, int]], keep: set[str]) -> list[str]:
        """Delete the blobs of `unsettled` not in `keep`, then their staging names."""
        removed = []
        for blob_id, (name, _) in sorted(unsettled.items()):
            if blob_id not in keep:
                self.delete_blob(blob_id)
                removed.append(blob_id)
            staging.unlink(self.staging / name)
            removed.append(name)
        return removed


def _mtime(path: Path) -> float | None:
    try:
        return os.path.getmtime(path)
    except FileNotFoundError:
        return None


def _older(path: Path, cutoff: float) -> bool:
    """True if `path` was last changed before `cutoff`; False if it is gone meanwhile
    (an upload committed or aborted: nothing left to remove)."""
    mtime = _mtime(path)
    return mtime is not None and mtime < cutoff


# providers.load finds each backend's class under this name
Provider = LocalProvider
