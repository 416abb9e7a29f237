"""Fast paths under paramiko's Transport and Channel, for bulk SFTP.

Shims, each with the interface of the paramiko part it replaces:

- `ChunkPipe` takes the place of a channel's receive buffer (paramiko's
  BufferedPipe). BufferedPipe keeps everything received in one array and
  reads with `del array[:n]`, a memmove of all that is still buffered. With our
  32 MiB channel window and psftp's 4 KiB requests, a backlog makes every read
  slower, so the backlog grows: psftp uploads fell to 2 MB/s with the daemon
  at 100% CPU. A ChunkPipe keeps the received chunks in a deque; a read costs
  O(bytes read).
- `ReadAheadSocket` wraps the connection's socket for paramiko's Packetizer,
  which reads every SSH packet with three or more recv() calls (each a poll
  and a recv, because the socket has a timeout). It recv()s up to 256 KiB at
  once and serves the small reads from that.
"""
import collections
import socket
import threading
import time
from typing import Any

from paramiko import Channel
from paramiko.buffered_pipe import PipeTimeout

READ_AHEAD = 256 * 1024


class ChunkPipe:
    """paramiko.buffered_pipe.BufferedPipe's interface and semantics (feed from the
    transport thread, read with a timeout, close), with reads in O(bytes read)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._event: threading.Event | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._offset = 0          # bytes of self._chunks[0] already read
        self._size = 0
        self._closed = False

    def set_event(self, event: threading.Event) -> None:
        with self._lock:
            self._event = event
            if self._closed or self._size:
                event.set()
            else:
                event.clear()

    def feed(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        with self._lock:
            if self._event is not None:
                self._event.set()
            if data:
                self._chunks.append(bytes(data))
                self._size += len(data)
            self._cv.notify_all()

    def read_ready(self) -> bool:
        return self._size > 0

    def read(self, nbytes: int, timeout: float | None = None) -> bytes:
        with self._lock:
            if not self._size:
                if self._closed:
                    return b""
                if timeout == 0.0:
                    raise PipeTimeout()
                self._wait(timeout)
            out = self._take(nbytes)
            if not self._size and self._event is not None and not self._closed:
                self._event.clear()
            return out

    def _wait(self, timeout: float | None) -> None:
        """Wait (holding the lock) until data arrives or the pipe closes."""
        while not self._size and not self._closed:
            then = time.monotonic()
            self._cv.wait(timeout)
            if timeout is not None:
                timeout -= time.monotonic() - then
                if timeout <= 0.0 and not self._size:
                    raise PipeTimeout()

    def _take(self, nbytes: int) -> bytes:
        """Up to nbytes from the front (the lock is held)."""
        parts: list[bytes] = []
        need = min(nbytes, self._size)
        self._size -= need
        chunks = self._chunks
        while need:
            chunk, start = chunks[0], self._offset
            end = start + need
            if end < len(chunk):
                parts.append(chunk[start:end])
                self._offset = end
                break
            parts.append(chunk if start == 0 else chunk[start:])
            chunks.popleft()
            self._offset = 0
            need -= len(chunk) - start
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def empty(self) -> bytes:
        with self._lock:
            out = self._take(self._size)
            if self._event is not None and not self._closed:
                self._event.clear()
            return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._cv.notify_all()
            if self._event is not None:
                self._event.set()

    def __len__(self) -> int:
        return self._size


def adopt_channel(channel: Channel) -> None:
    """Give `channel` a ChunkPipe as its receive buffer, keeping what it holds.

    Call this on the transport thread (paramiko builds subsystem handlers there),
    which is the only thread that feeds the buffer: nothing can arrive meanwhile.
    """
    old = channel.in_buffer
    if isinstance(old, ChunkPipe):
        return
    new = ChunkPipe()
    new.feed(old.empty())
    # BufferedPipe's state, private (and so not in paramiko's stubs)
    if old._event is not None:  # type: ignore[attr-defined]
        new.set_event(old._event)  # type: ignore[attr-defined]
    if old._closed:  # type: ignore[attr-defined]
        new.close()
    # Not a BufferedPipe by class, by interface: paramiko only calls the methods above.
    channel.in_buffer = new  # type: ignore[assignment]


class ReadAheadSocket:
    """A socket whose recv(n) is served from one larger recv(); everything else
    (settimeout, send, close, ...) goes to the wrapped socket. Only the
    transport thread reads, so the buffer needs no lock."""

    def __init__(self, sock: socket.socket, read_ahead: int = READ_AHEAD):
        self._sock = sock
        self.send = sock.send   # every packet sent: not through __getattr__
        self._read_ahead = read_ahead
        self._buf = b""
        self._pos = 0

    def recv(self, n: int) -> bytes:
        buf, pos = self._buf, self._pos
        if pos < len(buf):
            end = pos + n
            if end >= len(buf):
                self._buf, self._pos = b"", 0
                return buf[pos:] if pos else buf
            self._pos = end
            return buf[pos:end]
        data = self._sock.recv(max(n, self._read_ahead))
        if len(data) <= n:
            return data
        self._buf, self._pos = data, n
        return data[:n]

    def __getattr__(self, name: str) -> Any:  # any socket method
        return getattr(self._sock, name)
