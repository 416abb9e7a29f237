"""Streaming encryption into, and seekable decryption out of, the chunked blob format."""
import ctypes
import ctypes.util
import errno
import hashlib
import os
import queue
import threading

from providers import crypto
from providers.base import BlobReader, BlobWriter
from providers.errors import CorruptData, StorageError


# Blob writes start their way to the disk every WRITEBACK_EVERY bytes, so that the
# fsync at commit waits for the last few MiB, not for the whole file (an upload
# of 512 MiB spent 0.2 s in it, 17% of its time here).
WRITEBACK_EVERY = 8 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2


def _libc_sync_file_range():
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
_MADE_DIRS: set = set()


class ChunkedWriter(BlobWriter):
    """Encrypts chunk by chunk into a staging file.

    Whole chunks are hashed, sealed and written by a helper thread while the
    caller receives the next block (socket reads, hashing, AES and file writes
    all release the GIL); at most QUEUE blocks wait, so memory stays flat. Small
    files never start the thread.
    """

    QUEUE = 1

    def __init__(self, staging_path, final_path, blob_id: str, data_key: bytes, chunk_size: int):
        self.blob_id = blob_id
        self.size = 0
        self._staging, self._final = staging_path, final_path
        self._chunk = chunk_size
        self._header = crypto.make_header(chunk_size, bytes.fromhex(blob_id))
        self._cipher = crypto.ChunkCipher(data_key, self._header)
        self._key = data_key
        self._buf = bytearray()
        self._index = 0
        self._hash = hashlib.sha256()
        self._closed = False
        self._queue: queue.Queue | None = None
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None
        self._written = self._flushed = 0
        self._fd = os.open(staging_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            self._out(self._header)
        except StorageError:
            self.abort()
            raise

    def _out(self, data) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as e:
            raise StorageError(f"cannot write blob: {os.strerror(e.errno)}") from e
        self._written += len(data)
        if self._written - self._flushed >= WRITEBACK_EVERY:
            start_writeback(self._fd, self._flushed, self._written - self._flushed)
            self._flushed = self._written

    def _seal_and_write(self, index: int, block: bytes) -> None:
        self._hash.update(block)
        cs, view = self._chunk, memoryview(block)
        for i in range(len(block) // cs):  # one chunk at a time: no block-sized output buffer
            self._out(self._cipher.seal(index + i, view[i * cs:(i + 1) * cs], False))

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

    def write(self, data) -> None:
        if self._closed:
            raise StorageError("write after close")
        if self._error is not None:
            self._drain()
        self.size += len(data)
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
            if self._worker is None:
                self._queue = queue.Queue(self.QUEUE)
                self._worker = threading.Thread(target=self._run, daemon=True,
                                                name=f"seal-{self.blob_id[:8]}")
                self._worker.start()
            self._queue.put((self._index, block))
            self._index += n

    def _seal_tail(self) -> None:
        self._drain()
        tail = bytes(self._buf)
        self._buf = bytearray()
        self._hash.update(tail)
        self._out(self._cipher.seal(self._index, tail, True))

    def commit(self) -> str:
        try:
            self._seal_tail()
            os.fsync(self._fd)
            os.close(self._fd)
            self._closed = True
            folder = os.path.dirname(self._final)
            if folder not in _MADE_DIRS:
                os.makedirs(folder, exist_ok=True)
                _MADE_DIRS.add(folder)
            try:
                os.rename(self._staging, self._final)
            except FileNotFoundError:  # the folder went away (a restored backup?)
                os.makedirs(folder, exist_ok=True)
                os.rename(self._staging, self._final)
            _fsync_dir(os.path.dirname(self._final))
        except (OSError, StorageError) as e:
            self.abort()
            if isinstance(e, StorageError):
                raise
            raise StorageError(f"cannot commit blob: {os.strerror(e.errno)}") from e
        return self.blob_id

    def reopen_for_reading(self) -> "ChunkedReader":
        """Seal what was written (unpublished, not fsynced) and read it back; the
        reader removes the staging file when closed. For an upload that must go
        on as random-access writes over what it already streamed."""
        self._seal_tail()
        os.close(self._fd)
        self._closed = True
        return ChunkedReader(self._staging, self._key, self.size, remove_on_close=True)

    def abort(self) -> None:
        if self._worker is not None:
            self._error = self._error or StorageError("aborted")
            self._queue.put(None)
            self._worker.join()
            self._worker = None
        if not self._closed:
            self._closed = True
            os.close(self._fd)
        try:
            os.unlink(self._staging)
        except FileNotFoundError:
            pass

    def sha256(self) -> str:
        return self._hash.hexdigest()


class ChunkedReader(BlobReader):
    """Decrypts only the chunks a read touches; keeps the last two decrypted chunks."""

    def __init__(self, path, data_key: bytes, size: int, *, remove_on_close: bool = False):
        self._remove = path if remove_on_close else None
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise CorruptData("blob file is missing") from None
            raise StorageError(f"cannot open blob: {e.strerror}") from None
        header = os.pread(self._fd, crypto.HEADER_SIZE, 0)
        self._chunk = crypto.parse_header(header)
        self._cipher = crypto.ChunkCipher(data_key, header)
        self._size = size
        self._last = max(0, (size - 1) // self._chunk)
        expected = crypto.HEADER_SIZE + (self._last + 1) * crypto.TAG_SIZE + size
        if os.fstat(self._fd).st_size != expected:
            os.close(self._fd)
            raise CorruptData("blob length does not match the recorded size")
        self._cache: dict[int, bytes] = {}
        if size == 0:
            self._chunk_plain(0)  # an empty blob is one empty final chunk: authenticate it now

    def _chunk_plain(self, index: int) -> bytes:
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        stride = self._chunk + crypto.TAG_SIZE
        length = (self._size - index * self._chunk if index == self._last else self._chunk)
        data = os.pread(self._fd, length + crypto.TAG_SIZE, crypto.HEADER_SIZE + index * stride)
        plain = self._cipher.open(index, data, index == self._last)
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


def _fsync_dir(path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
