"""Streams in and out of the store on behalf of a Session.

An `Upload` builds a new version. Writes in order stream straight into a new
blob; a gap is filled from the previous version (when the upload continues an
existing file: resume, append) or left as a hole: zeros that are never written
out (the provider stores nothing for whole chunks of them, and the previous
version's holes stay holes), so a one-byte write far past the end costs no more
than any one-byte write. The first write before the current end switches the
upload to random access (appliance.service.overlay). Any failed write (quota,
size limit, disk) discards the upload, and a later commit says so: a file with a
missing part never becomes a version. The version becomes visible only in
`commit()`: blob fsynced first, then one database transaction. Copying that is
proportional to real data checks `cancel()` per block, so an upload whose
connection is gone stops at once.

What the provider cannot do is decided here, from its capabilities: without
random writes a write before the current end is refused (Unsupported), and
without holes a gap is written out as zeros, checked block by block like data.
"""
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, SupportsFloat

from prometheus_client import Counter

from strongroom.appliance.errors import Cancelled, Conflict, CorruptData, MissingParent, NoSpace, \
    QuotaExceeded, StrongroomError, TooLarge, Unsupported
from strongroom.appliance.service.entry import checked_mtime
from strongroom.appliance.service.entry import Entry
from strongroom.appliance.service.overlay import Layered, Overlay, extent_at
from strongroom.providers.base import BlobReader, BlobWriter, StorageProvider

if TYPE_CHECKING:
    from strongroom.appliance.metrics import Metrics

log = logging.getLogger("strongroom.storage")

COPY_BLOCK = 1024 * 1024
# Free space is looked at whenever this much more was stored: a statvfs per 4 MiB
# costs nothing next to encrypting them.
SPACE_CHECK_EVERY = 4 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one upload may use, checked on every write and again at commit."""
    quota: int | None       # bytes this version may have under the client's quota
    max_size: int           # [storage] max_file_size
    reserve: int            # bytes of free space the blob file system must keep


def human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:g} {unit}"
        n /= 1024
    return f"{n:g} TiB"


@dataclass(frozen=True)
class Origin:
    """Which stored version a reader reads, for the log line when it is corrupt."""
    client: str
    path: str           # canonical: '/<client>/...'
    version_id: int
    blob_id: str

    def corrupt(self, e: CorruptData) -> None:
        """Log, at ERROR, a blob that failed authentication (or is missing or cut):
        the client gets only 'failed its integrity check', the admin needs to know
        which version to restore from a backup."""
        log.error("stored data failed its integrity check: client %s, path %s, version %d, "
                  "blob %s: %s", self.client, self.path, self.version_id, self.blob_id, e,
                  extra={"client": self.client, "path": self.path,
                         "version_id": self.version_id, "blob_id": self.blob_id})


class ReadHandle:
    """An open version: `read(offset, size)` decrypts only the chunks it touches.
    `meter`: a counter of the bytes sent to the client (None: not counted; copies
    inside the store are not)."""

    def __init__(self, entry: Entry, reader: BlobReader, origin: Origin,
                 meter: Counter | None = None):
        self.entry = entry
        self._reader = reader
        self._origin = origin
        self._meter = meter
        self._reported = False

    def read(self, offset: int, size: int) -> bytes:
        data = self._read(offset, size)
        if self._meter is not None:
            self._meter.inc(len(data))
        return data

    def _read(self, offset: int, size: int) -> bytes:
        try:
            return self._reader.read(offset, size)
        except CorruptData as e:
            if not self._reported:     # once: a client may retry the same chunk many times
                self._reported = True
                self._origin.corrupt(e)
            raise

    def iter_range(self, start: int, end: int, block: int) -> Iterator[bytes]:
        """Yield the bytes [start, end) in blocks of at most `block` bytes."""
        pos = start
        while pos < end:
            data = self._read(pos, min(block, end - pos))
            if not data:
                return
            pos += len(data)
            yield data

    def data_ranges(self) -> list[tuple[int, int]]:
        """The half-open byte ranges that hold data: everything but the holes."""
        out: list[tuple[int, int]] = []
        pos = 0
        for start, end in self._reader.hole_ranges():
            if start > pos:
                out.append((pos, start))
            pos = end
        if pos < self.entry.size:
            out.append((pos, self.entry.size))
        return out

    def close(self) -> None:
        self._reader.close()


# make_writer(): a fresh blob writer and its data key wrapped for the client;
# publish(writer, wrapped_key, mtime): the committed blob as the new version, its Entry.
MakeWriter = Callable[[], tuple[BlobWriter, bytes]]
Publish = Callable[[BlobWriter, bytes, float | None], Entry]


class Upload:
    """One new version being written to `provider`; see the module docstring for
    the rules. `make_writer()` gives a fresh (BlobWriter, wrapped data key);
    `publish(writer, wrapped_key, mtime)` records the committed blob as the new
    version and returns its Entry (the Session's one transaction). `base`: (reader,
    size) of the version the upload starts from, or None. `metrics`: where its
    bytes and duration count, None for none (copies inside the store)."""

    def __init__(self, provider: StorageProvider, make_writer: MakeWriter, publish: Publish,
                 base: tuple[BlobReader, int] | None, limits: Limits, *,
                 metrics: "Metrics | None" = None, protocol: str = ""):
        self._provider, self._chunk = provider, provider.chunk_size
        self._make_writer, self._publish = make_writer, publish
        self._writer, self._wrapped = make_writer()
        self._base: BlobReader | None = base[0] if base else None
        self._base_size = base[1] if base else 0
        self._base_holes = self._base.hole_ranges() if self._base else []
        self._overlay: Overlay | None = None
        self._limits = limits
        self._unchecked = 0          # bytes stored since free space was last checked
        self._cancelled = threading.Event()
        self._done = False
        self._mtime: float | None = None
        self.entry: Entry | None = None
        self._metrics, self._protocol = metrics, protocol
        self._meter = None if metrics is None else metrics.meter(protocol, "up")
        self._started = time.monotonic()

    @property
    def mtime(self) -> float | None:
        """The modification time the version will have (None: the commit's time)."""
        return self._mtime

    @mtime.setter
    def mtime(self, value: SupportsFloat | str | bytes | None) -> None:
        self._mtime = None if value is None else checked_mtime(value)

    @property
    def size(self) -> int:
        """Bytes the version will have if committed now."""
        if self._overlay is not None:
            return self._overlay.size
        return max(self._writer.size, self._base_size)

    @property
    def position(self) -> int:
        """Bytes received in order so far (for a stream: its length)."""
        return self._overlay.size if self._overlay is not None else self._writer.size

    def cancel(self) -> None:
        """Stop at once, from any thread (the connection is gone): the copying in
        progress ends at its next block, and the upload is discarded."""
        self._cancelled.set()

    def append(self, data: bytes | memoryview) -> None:
        self.write(self.position, data)

    def write(self, offset: int, data: bytes | memoryview) -> None:
        if self._done:
            raise Conflict("the upload is closed or was discarded after an error")
        if not len(data):
            return  # a zero-length write never extends a file
        if self._meter is not None:
            self._meter.inc(len(data))
        try:
            self._check_limits(offset + len(data))
            self._stored(self._chunks_touched(offset, len(data)))
            if self._overlay is None and offset < self._writer.size:
                self._go_random()
            if self._overlay is not None:
                self._overlay.write(offset, data)
                return
            if offset > self._writer.size:
                self._fill(offset)
            self._writer.write(data)
        except BaseException:
            self.abort()  # a file with a missing part or tail must not become a version
            raise

    def _go_random(self) -> None:
        """Switch from streaming to random access (see appliance.service.overlay)."""
        if not self._provider.capabilities.random_write:
            raise Unsupported("this storage takes uploads in order only: a write before "
                              "the part already written is not supported")
        streamed = self._writer.size
        first = self._writer.reopen_for_reading()
        base = Layered(first, streamed, self._base, self._base_size)
        self._base = None  # now owned by the overlay
        self._overlay = Overlay(base, max(streamed, self._base_size),
                                self._provider.create_scratch(), self._chunk)

    def _check_limits(self, end: int) -> None:
        quota, max_size = self._limits.quota, self._limits.max_size
        if quota is not None and end > quota:
            raise QuotaExceeded("the client's quota is exhausted")
        if end > max_size:
            raise TooLarge(f"file too large: at most {human(max_size)} are allowed")

    def _chunks_touched(self, offset: int, n: int) -> int:
        """Bytes a write may store: whole chunks, as a chunk partly written is stored
        zero-filled (in the blob or, at random, in the scratch file); one byte per
        chunk would otherwise store 256 KiB for every byte the reserve was told of."""
        cs = self._chunk
        return max(n, ((offset + n - 1) // cs - offset // cs + 1) * cs)

    def _stored(self, n: int) -> None:
        """`n` more bytes are about to be stored: stop if the connection is gone, or
        before free space falls below the reserve (looked at every few MiB)."""
        if self._cancelled.is_set():
            raise Cancelled("the upload was cancelled: its connection is gone")
        self._unchecked += n
        if self._unchecked >= SPACE_CHECK_EVERY:
            self._unchecked = 0
            if self._provider.space()[1] < self._limits.reserve:
                raise NoSpace("not enough free space on the server")

    def _fill(self, upto: int) -> None:
        """Bring the stream up to `upto`: the previous version's data where it has
        some, and a hole over its holes and past its end."""
        writer = self._writer
        while writer.size < upto:
            pos = writer.size
            if self._base is None or pos >= self._base_size:
                self._skip(upto - pos)
                return
            in_hole, extent_end = extent_at(self._base_holes, pos)
            end = int(min(extent_end, upto, self._base_size))  # finite: upto is
            if in_hole:
                self._skip(end - pos)
                continue
            n = min(COPY_BLOCK, end - pos)
            self._stored(n)
            writer.write(self._base.read(pos, n))

    def _skip(self, n: int) -> None:
        """A gap: whole chunks become holes, the chunks at its ends are stored with
        zeros; all of it is zeros stored as data where the provider has no holes."""
        if self._provider.capabilities.holes:
            self._stored(min(n, 2 * self._chunk))
            self._writer.skip(n)
            return
        while n > 0:
            block = min(n, COPY_BLOCK)
            self._stored(block)
            self._writer.write(bytes(block))
            n -= block

    def _finish_stream(self) -> None:
        """Make the writer hold the complete content."""
        if self._overlay is None:
            self._fill(self._base_size)
            return
        self._writer, self._wrapped = self._make_writer()
        for block in self._overlay.blocks():
            if isinstance(block, int):
                self._skip(block)
            else:
                self._stored(len(block))
                self._writer.write(block)
        self._overlay.close()
        self._overlay = None

    def commit(self) -> Entry:
        """Publish the version; returns its Entry. Aborts (and re-raises) on any failure."""
        if self._done:
            if self.entry is None:
                raise Conflict("the upload failed earlier and was discarded; nothing was saved")
            return self.entry
        try:
            self._check_limits(self.size)
            self._finish_stream()
            self._close_base()
            self._writer.commit()
        except BaseException:
            self.abort()
            raise
        self._done = True
        try:
            self.entry = self._publish(self._writer, self._wrapped, self._mtime)
        except BaseException:
            self._provider.delete_blob(self._writer.blob_id)
            raise
        finally:
            self._writer.settle()   # only now: a crash before leaves it to clean_staging
        if self._metrics is not None:
            self._metrics.uploads.labels(self._protocol).observe(
                time.monotonic() - self._started)
        return self.entry

    def abort(self) -> None:
        """Drop the upload; the previous version stays current. Safe to call twice."""
        if not self._done:
            self._done = True
            self._close_base()
            if self._overlay is not None:
                self._overlay.close()
                self._overlay = None
            self._writer.abort()

    def _close_base(self) -> None:
        if self._base is not None:
            self._base.close()
            self._base = None


__all__ = ["COPY_BLOCK", "Limits", "MissingParent", "Origin", "ReadHandle", "Upload",
           "StrongroomError"]
