"""The HTTPS listener: cheroot's WSGI server, kept serving while clients hold it up.

cheroot 11 accepts connections and completes their TLS handshake in its one
selector thread, then gives each connection to a worker thread, which reads the
request line and headers with a timeout per read (300 s here, for slow bodies).
What that allowed, and what is done here instead:
- One TCP connection that never sent a ClientHello held up every accept for the
  whole timeout. Here `TLSAdapter.wrap` leaves the handshake to the worker.
- A header sent a byte every few seconds never trips a timeout per read, so a few
  dozen such connections (slowloris) held every worker. Here the handshake, and the
  request line and headers of each request, must arrive within [webdav]
  header_timeout: one deadline for the whole (`_DeadlineSocket`), then 408 and
  closed. Bodies and idle keep-alive connections keep the normal timeout.
- A failing accept() (EMFILE) escaped the selector loop, which logged a traceback
  and retried at once: 85,000 tracebacks in 10 s. Here it pauses and logs one line
  (`_Connections`, connlimits.AcceptBackoff).
- Connections from one address that have not yet carried a logged-in request are
  at most [webdav] max_unauthenticated_per_address; further ones are closed before
  their handshake. A login marks its connection: the domain controller calls
  `mark_authenticated()` on the worker thread serving it.
cheroot's own messages go to our log, one line each (with a traceback only where
cheroot asks for one: errors it did not expect).
"""
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING
from wsgiref.types import WSGIApplication

from cheroot import errors as cheroot_errors
from cheroot import wsgi
from cheroot.connections import ConnectionManager
from cheroot.makefile import MakeFile
from cheroot.server import HTTPConnection, HTTPRequest, KnownLengthRFile
from cheroot.ssl.builtin import BuiltinSSLAdapter

from strongroom.appliance.connlimits import AcceptBackoff, QuietLog

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from prometheus_client.metrics import Gauge

    from strongroom.appliance.metrics import Metrics

log = logging.getLogger("strongroom.webdav")
TIMEOUT = 300        # seconds: each read of a body, and an idle keep-alive connection


class _Serving(threading.local):
    """What this worker thread serves now: the connection, and its current request."""
    conn: "_Connection | None" = None
    request: "_Request | None" = None


_serving = _Serving()


def mark_authenticated() -> None:
    """The request this thread serves passed login: its connection no longer counts
    against its address's limit of connections not logged in. Harmless elsewhere."""
    conn = _serving.conn
    if conn is not None:
        conn.logged_in()


class _DeadlineSocket(ssl.SSLSocket):
    """A TLS socket whose reads fail with a timeout once `deadline` (a
    time.monotonic() value, or None for no deadline) has passed, however slowly
    the bytes before it trickled in."""

    deadline: float | None = None

    def recv_into(self, buffer: "WriteableBuffer", nbytes: int | None = None,
                  flags: int = 0) -> int:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:   # the text cheroot takes for a timeout: it answers 408
                raise TimeoutError("timed out")
            self.settimeout(left)
        return super().recv_into(buffer, nbytes, flags)


class TLSAdapter(BuiltinSSLAdapter):
    """cheroot's adapter with TLS 1.2+, whose wrap() leaves the handshake to the
    worker thread that serves the connection (`_Connection._handshake`)."""

    def __init__(self, certificate: str, private_key: str) -> None:
        super().__init__(certificate, private_key)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.sslsocket_class = _DeadlineSocket   # public since Python 3.7

    def wrap(self, sock: socket.socket) -> tuple[ssl.SSLSocket, dict[str, str]]:
        try:
            return self.context.wrap_socket(sock, server_side=True,
                                            do_handshake_on_connect=False), {}
        except OSError as e:    # the peer is gone already; cheroot drops the connection
            raise cheroot_errors.FatalSSLAlert(*e.args) from e


LINGER_SECONDS, LINGER_BYTES = 2.0, 16 * 1024 * 1024


def close_after_response(linger: bool = True) -> None:
    """The request this thread serves ends its connection once answered, instead of
    cheroot reading what is left of its body first (for keep-alive): an error
    answered before the body was read waits for the body at most LINGER_SECONDS
    (what a client sends meanwhile is read and dropped, so that closing does not
    reset the connection under the answer); without `linger` (a request without
    a body) it closes at once. Harmless elsewhere."""
    request = _serving.request
    if request is not None:
        request.close_connection = True
        # Not cheroot's own `linger`: that one leaves the socket open until it is
        # garbage-collected, and a client still sending, or reading to the end, hung.
        request.conn.drain_body = getattr(request, "rfile", None) if linger else None
        request.conn.drain = linger


class _Request(HTTPRequest):
    conn: "_Connection"

    def parse_request(self) -> None:
        _serving.request = self
        try:
            super().parse_request()
        except TimeoutError:
            self.conn.note_late("no complete request header")
            raise               # cheroot answers 408 and closes the connection
        finally:
            self.conn.headers_read()


class _Connection(HTTPConnection):
    """A connection that completes its TLS handshake on its worker thread, reads each
    request's headers under the header deadline, and counts against its address's
    limit until a request on it logs in (or it closes)."""

    RequestHandlerClass = _Request
    server: "Server"

    def __init__(self, server: "Server", sock: socket.socket,
                 makefile: Callable[..., object] = MakeFile) -> None:
        super().__init__(server, sock, makefile)
        self.admitted = False         # Server.process_conn has looked at it
        # the address whose count of not logged in holds it
        self.counted: str | None = None
        # the metrics gauge it counts in once logged in
        self.active: Gauge | None = None
        self._handshaken = not isinstance(sock, ssl.SSLSocket)
        # close_after_response: read what the client still sends before closing
        # (`drain_body`: the request's body reader, if it is to be read to its end)
        self.drain = False
        self.drain_body: object = None

    def communicate(self) -> bool:
        _serving.conn = self
        deadline = time.monotonic() + self.server.header_timeout
        try:
            if isinstance(self.socket, _DeadlineSocket):
                self.socket.deadline = deadline
            if not self._handshaken and not self._handshake(deadline):
                return False
            # cheroot's stub leaves communicate() unannotated
            done: bool = super().communicate()  # type: ignore[no-untyped-call]
            return done
        finally:
            self.headers_read()
            _serving.conn = _serving.request = None

    def _handshake(self, deadline: float) -> bool:
        try:
            # One timeout for the whole handshake: CPython applies it as a deadline.
            self.socket.settimeout(max(0.001, deadline - time.monotonic()))
            self.socket.do_handshake()
        except TimeoutError:
            self.note_late("no TLS handshake")
            return False
        except (OSError, ValueError) as e:
            self.server.quiet.info("tls", self.remote_addr, "webdav TLS handshake with %s "
                                   "failed: %s", self.remote_addr, e)
            return False
        self._handshaken = True
        self.ssl_env = self.server.ssl_adapter.get_environ(self.socket)
        return True

    def headers_read(self) -> None:
        """The headers are in, or the attempt is over: the normal timeout again."""
        sock = self.socket
        if isinstance(sock, _DeadlineSocket) and sock.deadline is not None:
            sock.deadline = None
            with suppress(OSError):
                sock.settimeout(self.server.timeout)

    def note_late(self, what: str) -> None:
        self.server.quiet.info("late", self.remote_addr, "webdav connection from %s closed: "
                               "%s within %g s (header_timeout)", self.remote_addr, what,
                               self.server.header_timeout)

    def logged_in(self) -> None:
        """A request on it passed login: it no longer counts against its address,
        and counts as an active session (appliance.metrics) until it closes."""
        self._uncount()
        metrics = self.server.metrics
        if metrics is not None and self.active is None:
            self.active = metrics.sessions.labels("webdav")
            self.active.inc()

    def close(self) -> None:
        self._uncount()
        active, self.active = self.active, None
        if active is not None:
            active.dec()
        if self.drain:
            self._drain()
        super().close()

    def _drain(self) -> None:
        """Read and drop what the client still sends, for a bounded time: closing a
        socket with unread data resets the connection, and a client still sending a
        body it was refused would lose the answer to it. A body of known length is
        read to its end and no further (then the connection closes at once)."""
        deadline, left = time.monotonic() + LINGER_SECONDS, LINGER_BYTES
        body, self.drain_body = self.drain_body, None
        if isinstance(body, KnownLengthRFile):
            self._drain_known(body, deadline, min(left, body.remaining))
            return
        while left > 0 and deadline > time.monotonic():
            try:
                self.socket.settimeout(deadline - time.monotonic())
                data = self.socket.recv(min(65536, left))
            except (OSError, ValueError):
                return
            if not data:
                return
            left -= len(data)

    def _drain_known(self, body: KnownLengthRFile, deadline: float, left: int) -> None:
        """Read `left` bytes of the body through cheroot's reader (it holds the start
        of what follows the headers), by `deadline`."""
        while left > 0 and deadline > time.monotonic():
            try:
                self.socket.settimeout(deadline - time.monotonic())
                data = body.read(min(65536, left))
            except (OSError, ValueError):
                return
            if not data:
                return
            left -= len(data)

    def _uncount(self) -> None:
        address, self.counted = self.counted, None
        if address is not None:
            self.server.prelogin.release(address)


class _PerAddress:
    """How many connections each address has that have not logged in yet."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, address: str) -> bool:
        """Count one more for `address`, unless it has `limit` already."""
        with self._lock:
            n = self._counts.get(address, 0)
            if n >= self.limit:
                return False
            self._counts[address] = n + 1
            return True

    def release(self, address: str) -> None:
        with self._lock:
            n = self._counts.pop(address, 0) - 1
            if n > 0:
                self._counts[address] = n


class _Connections(ConnectionManager):
    """cheroot's connection manager, pausing when accept() fails. cheroot raised the
    error out of its selector loop, which logged a traceback and retried at once."""

    server: "Server"

    def _from_server_socket(self, server_socket: socket.socket) -> "_Connection | None":
        try:
            # cheroot's stub omits this private method (Server.prepare checks it is there)
            conn: _Connection | None = super()._from_server_socket(  # type: ignore[misc]
                server_socket)
        except OSError as e:
            self.server.accept_backoff.failed(e)   # sleeps: keep-alive requests wait too
            return None
        if conn is not None:
            self.server.accept_backoff.succeeded()
        return conn


class Server(wsgi.Server):
    """cheroot's WSGI server over TLS (`TLSAdapter`) with the defences above."""

    ConnectionClass = _Connection

    def __init__(self, bind_addr: tuple[str, int], wsgi_app: WSGIApplication, *,
                 tls: TLSAdapter, threads: int, header_timeout: float, per_address: int,
                 max_header_size: int, metrics: "Metrics | None" = None) -> None:
        super().__init__(bind_addr, wsgi_app, numthreads=threads, server_name="Strongroom",
                         timeout=TIMEOUT, request_queue_size=128)
        # the request line and headers together (cheroot answers 413 beyond it)
        self.max_request_header_size = max_header_size
        self.ssl_adapter = tls
        self.header_timeout = header_timeout
        self.prelogin = _PerAddress(per_address)
        self.quiet = QuietLog(log)
        self.accept_backoff = AcceptBackoff(log, "webdav")
        self.metrics = metrics

    def prepare(self) -> None:
        super().prepare()
        # The manager is made inside prepare() and has no class attribute to
        # choose it by: replace it while it holds no connection yet, if it is the
        # cheroot 11 one whose accept we extend; otherwise serve without the pause.
        stock = getattr(self, "_connections", None)
        if type(stock) is ConnectionManager and hasattr(stock, "_from_server_socket"):
            stock.close()
            self._connections = _Connections(self)
        else:
            log.warning("webdav: unexpected cheroot connection manager %r; a failing "
                        "accept() will not pause", type(stock).__name__)

    def process_conn(self, conn: HTTPConnection) -> None:
        """A new connection is admitted or closed here, on the accepting thread."""
        if isinstance(conn, _Connection) and not conn.admitted:
            conn.admitted = True
            address = conn.remote_addr
            if not self.prelogin.take(address):
                self.quiet.info("prelogin", address, "webdav connection from %s refused: "
                                "%d from there not logged in yet "
                                "(max_unauthenticated_per_address)", address,
                                self.prelogin.limit)
                conn.close()
                return
            conn.counted = address
        super().process_conn(conn)

    def error_log(self, msg: str = "", level: int = logging.INFO,
                  traceback: bool = False) -> None:
        if traceback and msg.startswith("socket.error"):
            # a peer gone before its answer was written (an upload cut off): one line
            log.log(level, "cheroot: %s: %s", msg, sys.exc_info()[1])
            return
        log.log(level, "cheroot: %s", msg, exc_info=traceback)
