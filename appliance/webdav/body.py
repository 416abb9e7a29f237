"""A faster wsgi.input for upload bodies of known length.

cheroot reads request bodies through the pure-Python `_pyio.BufferedReader`
(on purpose, see cheroot.makefile). Asked for a 1 MiB block, it calls the
socket once per TLS record (16 KiB), each time allocating and zeroing a fresh
1 MiB bytearray, then joins the records and copies the result twice: most of
the GIL-holding time of a large PUT. `SocketBody` fills one buffer per block
with `recv_into` straight from the connection's socket. It takes cheroot's
buffered bytes first and keeps cheroot's count of what is left to read, so
keep-alive works as before. Anything else (chunked bodies, another server)
keeps its own input.
"""
import socket
import ssl
from typing import Protocol
from wsgiref.types import WSGIEnvironment

MIN_LENGTH = 256 * 1024


class KnownLength(Protocol):
    """cheroot's KnownLengthRFile: what of the body is left to read."""
    remaining: int


class BufferedStream(Protocol):
    """cheroot's StreamReader, a pure-Python `_pyio.BufferedReader`: its private buffer
    (use_socket_body checks that it has one) and cheroot's count of bytes read."""
    _read_buf: bytes
    _read_pos: int
    bytes_read: int   # smaller bodies gain nothing worth the special case


class SocketBody:
    """`read(size)` returns up to `size` bytes of the body (a bytearray the caller
    owns); b"" at its end, or early if the peer closed the connection."""

    def __init__(self, known_length_rfile: KnownLength, stream_reader: BufferedStream,
                 sock: socket.socket) -> None:
        self._known = known_length_rfile
        self._stream = stream_reader
        self._sock = sock

    @property
    def remaining(self) -> int:
        """Bytes of the body not read yet."""
        return self._known.remaining

    def read(self, size: int | None = None) -> bytearray:
        remaining = self._known.remaining
        if size is None or size < 0 or size > remaining:
            size = remaining
        if size == 0:
            return bytearray()
        buf = bytearray(size)
        view = memoryview(buf)
        pos = self._take_buffered(view)
        try:
            pos = self._receive(view, pos)
        finally:
            # What was taken is counted even if a read failed: cheroot reads what is
            # left for keep-alive, and would wait for bytes already taken (the thread
            # held for the whole timeout, the answer never sent).
            view.release()
            self._known.remaining -= pos
            self._stream.bytes_read += pos
        if pos < size:
            del buf[pos:]
        return buf

    def _receive(self, view: memoryview, pos: int) -> int:
        """Fill view[pos:] from the socket; the new position. On a non-blocking
        socket (wsgidav discarding a refused body) it stops where what has arrived
        ends, as a non-blocking read does."""
        while pos < len(view):
            try:
                n = self._sock.recv_into(view[pos:])
            except (BlockingIOError, ssl.SSLWantReadError):
                if pos:
                    return pos
                raise
            if not n:
                break
            pos += n
        return pos

    def _take_buffered(self, view: memoryview) -> int:
        """Copy what cheroot's reader holds already (the start of the body)."""
        stream = self._stream
        held = len(stream._read_buf) - stream._read_pos
        if held <= 0:
            return 0
        n = min(held, len(view))
        view[:n] = stream._read_buf[stream._read_pos:stream._read_pos + n]
        stream._read_pos += n
        return n


def use_socket_body(environ: WSGIEnvironment) -> None:
    """Swap a large known-length body's wsgi.input for a SocketBody, where the
    server is the cheroot we run (its internals are checked, not assumed)."""
    rfile = environ.get("wsgi.input")
    stream = getattr(rfile, "rfile", None)
    sock = getattr(getattr(stream, "raw", None), "_sock", None)
    if rfile is None or stream is None or sock is None or \
            getattr(rfile, "remaining", 0) < MIN_LENGTH or \
            not hasattr(stream, "_read_buf") or not hasattr(stream, "_read_pos") or \
            type(rfile).__name__ != "KnownLengthRFile":
        return
    environ["wsgi.input"] = SocketBody(rfile, stream, sock)
