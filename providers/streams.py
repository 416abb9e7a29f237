"""Streaming encryption into, and seekable decryption out of, the chunked blob format."""
import bisect
import ctypes
import ctypes.util
import errno
import os
import queue
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from strongroom.providers import crypto, holes, staging
from strongroom.providers.base import BlobReader, BlobWriter, BytesLike
from strongroom.providers.digest import ContentDigest
from strongroom.providers.errors import CorruptData, StorageError, write_failed
from strongroom.providers.fsutil import fsync_dir


# Blob writes start their way to the disk every WRITEBACK_EVERY bytes, so that the
# fsync at commit waits for the last few MiB, not for the whole file (an upload
# of 512 MiB spent 0.2 s in it, 17% of its time here).
WRITEBACK_EVERY = 8 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2


def _libc_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6",
                         use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None  # not Linux: the fsync at commit does all the work
    fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    return fn


_sync_file_range = _libc_sync_file_range()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range out, without waiting for it: an
    optimisation only, so a failure is ignored (fsync at commit reports errors)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


# Blob folders made by this process (a commit that finds one gone makes it again).
_MADE_DIRS: set[str] = set()

# What the helper thread is handed: (first chunk index, whole chunks to seal, or None
# for a run of `count` hole chunks, count); None tells it to stop.
_Work: TypeAlias = tuple[int, BytesLike | None, int] | None


class ChunkedWriter(BlobWriter):
    """Encrypts chunk by chunk into a staging file.

    Whole chunks are digested, sealed and written by a helper thread while the
    caller receives the next block (socket reads, hashing, AES and file writes
    all release the GIL); at most QUEUE blocks wait, so memory stays flat. Small
    files never start the thread. Each chunk is written at its own offset, so a
    chunk skipped as a hole leaves a file-system hole.
    """

    QUEUE = 1

    def __init__(self, staging_path: Path, final_path: Path, blob_id: str, data_key: bytes,
                 chunk_size: int, digest_key: bytes) -> None:
        self.blob_id = blob_id
        self.size = 0
        self._staging, self._final = staging_path, final_path
        self._chunk = chunk_size
        self._header = crypto.make_header(chunk_size, bytes.fromhex(blob_id))
        self._cipher = crypto.ChunkCipher(data_key, self._header)
        self._key = data_key
        self._buf = bytearray()
        self._index = 0                       # the chunk _buf belongs to
        self._skipped_tail = False            # _buf holds only zeros skip() put there
        self._holes: list[list[int]] = []     # [first, end) chunk runs, merged
        self._digest = ContentDigest(digest_key)
        self._result: str | None = None
        self._closed = False                  # no more writes (committed, aborted, handed on)
        self._published = False               # committed, not yet settled
        # made here, used once the helper thread runs (a Queue costs a few microseconds)
        self._queue: queue.Queue[_Work] = queue.Queue(self.QUEUE)
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None
        self._written = self._flushed = 0
        # read-write: reopen_for_reading hands this descriptor, and its lock, to a reader
        self._fd = os.open(staging_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                           0o600)
        try:
            staging.hold(self._fd)
            self._out(self._header, 0)
        except StorageError:
            self.abort()
            raise

    def _out(self, data: BytesLike, offset: int) -> None:
        view = memoryview(data)
        try:
            while view:
                n = os.pwrite(self._fd, view, offset)
                view, offset = view[n:], offset + n
        except OSError as e:
            raise write_failed("blob", e) from e
        self._written = max(self._written, offset)
        if self._written - self._flushed >= WRITEBACK_EVERY:
            start_writeback(self._fd, self._flushed, self._written - self._flushed)
            self._flushed = self._written

    def _offset(self, index: int) -> int:
        return crypto.HEADER_SIZE + index * (self._chunk + crypto.TAG_SIZE)

    def _seal_and_write(self, index: int, block: BytesLike | None, count: int = 0) -> None:
        """Seal and write the whole chunks of `block` from chunk `index` on; a block of
        None is a run of `count` hole chunks (digested only)."""
        if block is None:
            self._digest.hole(index, count)
            return
        cs, view = self._chunk, memoryview(block)
        for i in range(len(block) // cs):  # one chunk at a time: no block-sized output buffer
            plain = view[i * cs:(i + 1) * cs]
            self._digest.chunk(plain)
            self._out(self._cipher.seal(index + i, plain, False), self._offset(index + i))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._error is not None:
                if item is None:
                    return
                continue  # failed: keep draining so the producer never blocks
            try:
                self._seal_and_write(*item)
            except BaseException as e:
                self._error = e

    def _submit(self, index: int, block: BytesLike | None, count: int = 0) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, daemon=True,
                                            name=f"seal-{self.blob_id[:8]}")
            self._worker.start()
        self._queue.put((index, block, count))

    def _drain(self) -> None:
        """Wait for queued blocks; re-raise the helper's failure, if any."""
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None
        if self._error is not None:
            error, self._error = self._error, None
            self.abort()
            raise error if isinstance(error, StorageError) else StorageError(str(error))

    def write(self, data: BytesLike) -> None:
        if self._closed:
            raise StorageError("write after close")
        if self._error is not None:
            self._drain()
        self.size += len(data)
        self._skipped_tail = False
        buf = self._buf
        cs = self._chunk
        # Keep the last chunk back: only commit knows whether it is the final one.
        if not buf and len(data) > cs:
            n = (len(data) - 1) // cs
            # bytes cannot change: the helper may share them; anything else is copied
            view = memoryview(data)
            block = view[:n * cs] if type(data) is bytes else bytearray(view[:n * cs])
            buf += view[n * cs:]
        else:
            buf += data
            n = (len(buf) - 1) // cs if len(buf) > cs else 0
            if n:
                block = buf[:n * cs]   # a copy the helper owns (bytes() would copy it again)
                del buf[:n * cs]
        if n:
            self._submit(self._index, block)
            self._index += n

    def skip(self, n: int) -> None:
        if self._closed:
            raise StorageError("write after close")
        if self._error is not None:
            self._drain()
        if self._skipped_tail and self._buf:
            # the current chunk holds only zeros an earlier skip left: skip from its
            # start again, so that skip(a); skip(b) stores what skip(a + b) stores
            n += len(self._buf)
            self.size -= len(self._buf)
            self._buf = bytearray()
        cs = self._chunk
        head = min(n, -self.size % cs)   # zeros that complete a partly written chunk
        if head:
            self.write(bytes(head))
        whole, rest = divmod(n - head, cs)
        if whole:
            self._hole(whole)
        if rest:
            self.write(bytes(rest))     # the start of a chunk: _buf is these zeros now
            self._skipped_tail = True

    def _hole(self, count: int) -> None:
        """Skip `count` whole chunks: recorded, digested in order, never written."""
        if self._buf:  # a whole chunk held back: more follows, so it is not the final one
            block, self._buf = self._buf, bytearray()
            self._submit(self._index, block)
            self._index += 1
        first = self._index
        if self._holes and self._holes[-1][1] == first:
            self._holes[-1][1] += count
        elif len(self._holes) >= holes.MAX_RUNS:
            raise StorageError(f"a file may have at most {holes.MAX_RUNS} separate "
                               "unwritten ranges")
        else:
            self._holes.append([first, first + count])
        if self._worker is None:
            self._digest.hole(first, count)  # nothing in flight: in order already
        else:
            self._submit(first, None, count)
        self._index += count
        self.size += count * self._chunk

    def _seal_tail(self) -> None:
        self._drain()
        if not self._buf and self._holes and self._holes[-1][1] == self._index:
            self._unhole_last()
        tail = bytes(self._buf)
        self._buf = bytearray()
        self._digest.chunk(tail)
        self._result = self._digest.finish(self.size, self._chunk)
        self._out(self._cipher.seal(self._index, tail, True, crypto.holes_tag(self.holes())),
                  self._offset(self._index))

    def _unhole_last(self) -> None:
        """The final chunk is always stored, even when it was skipped: as zeros."""
        last = self._holes[-1]
        last[1] -= 1
        if last[0] == last[1]:
            self._holes.pop()
        self._digest.unhole_last()
        self._index -= 1
        self._buf = bytearray(self._chunk)

    def commit(self) -> str:
        """Publish the blob as a second name of the staging file, which stays, held,
        until `settle` (providers.local: the publishing journal)."""
        try:
            self._seal_tail()
            os.fsync(self._fd)
            self._link()
        except (OSError, StorageError) as e:
            self.abort()
            if isinstance(e, StorageError):
                raise
            raise write_failed("blob", e) from e
        self._closed = self._published = True
        return self.blob_id

    def _link(self) -> None:
        folder = os.path.dirname(self._final)
        if folder not in _MADE_DIRS:
            os.makedirs(folder, exist_ok=True)
            _MADE_DIRS.add(folder)
        try:
            os.link(self._staging, self._final)
        except FileNotFoundError:  # the folder went away (a restored backup?)
            os.makedirs(folder, exist_ok=True)
            os.link(self._staging, self._final)
        try:
            fsync_dir(folder)
        except OSError:
            os.unlink(self._final)
            raise

    def settle(self) -> None:
        """The blob's version is recorded, or the blob deleted: drop the staging name
        that marked it as being published, and with it this process's hold."""
        if self._published and self._fd >= 0:
            try:
                os.unlink(self._staging)
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = -1

    def reopen_for_reading(self) -> "ChunkedReader":
        """Seal what was written (unpublished, not fsynced) and read it back; the
        reader removes the staging file when closed. For an upload that must go
        on as random-access writes over what it already streamed."""
        self._seal_tail()
        self._closed = True   # the reader owns the descriptor (and the staging lock) now
        return ChunkedReader(self._staging, self._key, self.size, self.holes(),
                             remove_on_close=True, fd=self._fd)

    def abort(self) -> None:
        """Discard the upload; once committed, the same as settle() (the blob stays
        published: its owner deletes it with delete_blob)."""
        if self._published:
            self.settle()
            return
        if self._worker is not None:
            self._error = self._error or StorageError("aborted")
            self._queue.put(None)
            self._worker.join()
            self._worker = None
        if not self._closed:
            self._closed = True
            os.close(self._fd)
            self._fd = -1
        try:
            os.unlink(self._staging)
        except FileNotFoundError:
            pass

    def holes(self) -> str | None:
        return holes.to_text(self._holes)

    def digest(self) -> str:
        if self._result is None:
            raise StorageError("the digest is known only after commit")
        return self._result


def _open_regular(path: Path) -> int:
    """A descriptor of the blob file at `path`. Not following a symbolic link nor
    waiting on a FIFO (O_NONBLOCK: opening one for reading would wait for a writer,
    hanging a download or the scrub); either, or a device or socket, is StorageError.
    O_NONBLOCK changes nothing for a regular file's reads."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise CorruptData("blob file is missing") from None
        if e.errno == errno.ELOOP:
            raise StorageError("blob is not a regular file") from None
        raise StorageError(f"cannot open blob: {e.strerror}") from None
    mode = os.fstat(fd).st_mode
    # A directory fails its first read harmlessly (EISDIR, as a failing disk fails);
    # a FIFO, socket or device could block or never end.
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        os.close(fd)
        raise StorageError("blob is not a regular file")
    return fd


class ChunkedReader(BlobReader):
    """Decrypts only the chunks a read touches; keeps the last two decrypted chunks.
    Hole chunks read as zeros without touching the file."""

    def __init__(self, path: Path, data_key: bytes, size: int, holes_text: str | None = None,
                 *, remove_on_close: bool = False, fd: int | None = None) -> None:
        """`fd`: an open descriptor of `path` to read from (and close) instead."""
        self._remove = path if remove_on_close else None
        self._fd = _open_regular(path) if fd is None else fd
        try:
            self._open(data_key, size, holes_text)
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            raise

    def _open(self, data_key: bytes, size: int, holes_text: str | None) -> None:
        header = os.pread(self._fd, crypto.HEADER_SIZE, 0)
        self._chunk = crypto.parse_header(header)
        self._cipher = crypto.ChunkCipher(data_key, header)
        self._size = size
        self._last = max(0, (size - 1) // self._chunk)
        expected = crypto.HEADER_SIZE + (self._last + 1) * crypto.TAG_SIZE + size
        if os.fstat(self._fd).st_size != expected:
            raise CorruptData("blob length does not match the recorded size")
        self._holes = holes.parse(holes_text, self._last)
        self._hole_starts = [a for a, _ in self._holes]
        self._holes_tag = crypto.holes_tag(holes_text)
        self._cache: dict[int, bytes] = {}
        if size == 0 or self._holes:
            # An empty blob is one empty final chunk; a blob with holes has its hole
            # list bound to the final chunk: authenticate either now.
            self._chunk_plain(self._last)

    def _is_hole(self, index: int) -> bool:
        i = bisect.bisect_right(self._hole_starts, index) - 1
        return i >= 0 and index < self._holes[i][1]

    def _chunk_plain(self, index: int) -> bytes:
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        if self._holes and self._is_hole(index):
            return bytes(self._chunk)   # never the last chunk: always whole
        stride = self._chunk + crypto.TAG_SIZE
        length = (self._size - index * self._chunk if index == self._last else self._chunk)
        data = os.pread(self._fd, length + crypto.TAG_SIZE, crypto.HEADER_SIZE + index * stride)
        final = index == self._last
        plain = self._cipher.open(index, data, final, self._holes_tag if final else b"")
        if len(self._cache) >= 2:
            self._cache.pop(next(iter(self._cache)))
        self._cache[index] = plain
        return plain

    def read(self, offset: int, size: int) -> bytes:
        end = min(offset + size, self._size)
        if offset >= end:
            return b""
        cs = self._chunk
        first, last = offset // cs, (end - 1) // cs
        if first == last:
            return self._chunk_plain(first)[offset - first * cs:end - first * cs]
        parts = [self._chunk_plain(i) for i in range(first, last + 1)]
        parts[0] = parts[0][offset - first * cs:]
        parts[-1] = parts[-1][:end - last * cs]
        return b"".join(parts)

    def hole_ranges(self) -> list[tuple[int, int]]:
        return holes.byte_ranges(self._holes, self._chunk)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._cache.clear()
        if self._remove:
            try:
                os.unlink(self._remove)
            except FileNotFoundError:
                pass
            self._remove = None

