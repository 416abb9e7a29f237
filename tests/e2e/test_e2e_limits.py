"""Connection limits of the real daemon: what keeps both listeners serving while some
clients hold resources (security-hardening items 12 and 13).

- Running out of file descriptors (a daemon started with a low RLIMIT_NOFILE, filled
  with bare TCP connections): both listeners accept again once they are released, each
  after one log line, without tracebacks.
- SFTP: a session gets at most MAX_HANDLES open handles; SSH connections that have not
  logged in are limited per address and in total, and closed after the grace time.
- WebDAV: the TLS handshake and a request's headers must arrive within the header
  deadline (slowloris), and connections not yet logged in are limited per address.

Clients connect from several loopback addresses (127.0.0.x) to stand for different
hosts; nothing leaves the machine. Every wait is bounded.
"""
import base64
import http.client
import select
import socket
import ssl
import time

import paramiko
import pytest

from tests.support.daemon import HOST, running_daemon

GRACE = 2                 # [ssh] login_grace_time, seconds
PER_ADDRESS = 4           # [ssh] max_startups_per_address, [webdav] max_unauthenticated_per_address
MAX_STARTUPS = 6          # [ssh] max_startups
HEADER_TIMEOUT = 2        # [webdav] header_timeout, seconds
THREADS = 6               # [webdav] threads
MAX_HANDLES = 256         # what limits@openssh.com announces
MAX_SESSIONS = 4          # [ssh] max_sessions
NOFILE = 64               # RLIMIT_NOFILE of the starved daemon (it starts with ~10 open)
EMFILE_TEXT = "Too many open files"


LIMITS = {"ssh": dict(login_grace_time=f"{GRACE}s", max_startups=MAX_STARTUPS,
                     max_startups_per_address=PER_ADDRESS, max_sessions=MAX_SESSIONS),
          "webdav": dict(header_timeout=f"{HEADER_TIMEOUT}s", threads=THREADS,
                         max_unauthenticated_per_address=PER_ADDRESS)}
# No limit that would refuse connections before the descriptors run out.
UNLIMITED = {"ssh": dict(max_startups=1000, max_startups_per_address=1000),
             "webdav": dict(max_unauthenticated_per_address=1000)}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-limits", LIMITS)


@pytest.fixture
def starved(daemon):
    """The daemon restarted with few descriptors and UNLIMITED; back to LIMITS after."""
    def restart(options, nofile=None):
        daemon.stop()
        for section, values in options.items():
            daemon.set_options(section, **values)
        daemon.start(nofile)

    restart(UNLIMITED, NOFILE)
    yield daemon
    restart(LIMITS)


# -- helpers ----------------------------------------------------------------------------

def wait_until(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


def connect(port: int, source: str = HOST, timeout: float = 10) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=timeout, source_address=(source, 0))


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_connect(daemon, source: str) -> ssl.SSLSocket:
    return tls_context().wrap_socket(connect(daemon.webdav_port, source))


def closed_within(sock, seconds: float) -> bool:
    """True if the peer ends the connection (EOF or reset) within `seconds`; what it
    sends before (a 408, say) is read and dropped."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            if not sock.recv(4096):
                return True
        except (ConnectionError, ssl.SSLError):
            return True
        except TimeoutError:
            return False
    return False


def greeting(sock, timeout: float = 5) -> bytes:
    """The first bytes the server sends (b"" if it closes the connection first)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(256)
    except ConnectionError:
        return b""


def sftp_login(daemon, login: str = "alice", source: str = HOST):
    t = paramiko.Transport(connect(daemon.sftp_port, source))
    t.banner_timeout = 5
    t.connect(username=login, password=daemon.users[login].password)
    return t, paramiko.SFTPClient.from_transport(t)


def sftp_works(daemon) -> bool:
    try:
        t, sftp = sftp_login(daemon)
    except (OSError, EOFError, paramiko.SSHException):
        return False
    try:
        sftp.listdir("/")
        return True
    finally:
        t.close()


def propfind_status(daemon, *args) -> int:
    return daemon.request("alice", "PROPFIND", "/", "-H", "Depth: 0", *args, max_time=20).status


def dav_connection(daemon, source: str) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(HOST, daemon.webdav_port, timeout=10,
                                       source_address=(source, 0), context=tls_context())


def logged_in_propfind(daemon, conn) -> int:
    """An authenticated PROPFIND on `conn`, which stays open (keep-alive)."""
    user = daemon.users["alice"]
    token = base64.b64encode(f"{user.login}:{user.password}".encode()).decode()
    conn.request("PROPFIND", "/", headers={"Depth": "0", "Authorization": f"Basic {token}"})
    response = conn.getresponse()
    response.read()
    return response.status


def close_all(socks) -> None:
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


# -- running out of descriptors ---------------------------------------------------------

def _starve(daemon, port: int, other_port: int) -> int:
    """Fill the daemon's descriptors with bare connections to `port`, knock at
    `other_port` meanwhile, release everything; return the log written meanwhile."""
    mark = len(daemon.log_text())
    held = []
    try:
        for _ in range(NOFILE + 16):   # the listen backlog takes what is not accepted
            held.append(connect(port, timeout=5))
        assert wait_until(lambda: EMFILE_TEXT in daemon.log_text()[mark:], 10), \
            f"no log line about running out of descriptors:\n{daemon.log_text()[mark:][-3000:]}"
        held.append(connect(other_port, timeout=5))   # the other listener meets it too
        time.sleep(1.5)
    finally:
        close_all(held)
    time.sleep(2)   # an accept() that works 1 s after the last failing one ends the episode
    return mark


def _check_recovered(daemon, mark: int) -> None:
    assert wait_until(lambda: sftp_works(daemon), 30), "SFTP did not accept logins again"
    assert propfind_status(daemon) == 207, "WebDAV did not answer again"
    log = daemon.log_text()[mark:]
    assert "Traceback" not in log, log[-3000:]
    assert 1 <= len(lines_with(log, EMFILE_TEXT)) <= 2, \
        f"one line per listener expected:\n{log[-3000:]}"
    assert "accepts connections again" in log


def test_sftp_accepts_again_after_descriptors_ran_out(starved):
    mark = _starve(starved, starved.sftp_port, starved.webdav_port)
    _check_recovered(starved, mark)


def test_webdav_accepts_again_after_descriptors_ran_out(starved):
    mark = _starve(starved, starved.webdav_port, starved.sftp_port)
    _check_recovered(starved, mark)


# -- SFTP ---------------------------------------------------------------------------------

def test_sftp_handles_beyond_the_limit_fail_and_the_others_keep_working(daemon):
    t, sftp = sftp_login(daemon)
    try:
        with sftp.open("/handles.txt", "wb") as f:
            f.write(b"0123456789")
        files = [sftp.open("/handles.txt", "rb") for _ in range(MAX_HANDLES)]
        with pytest.raises(IOError, match="too many open handles"):
            sftp.open("/handles.txt", "rb")
        with pytest.raises(IOError, match="too many open handles"):
            sftp.listdir("/")                       # a directory handle is a handle too
        files[0].seek(2)
        assert files[0].read(3) == b"234"
        assert files[-1].read() == b"0123456789"
        files.pop().close()
        assert "handles.txt" in sftp.listdir("/")   # one handle free: it works again
        with sftp.open("/handles.txt", "rb") as f:
            assert f.read() == b"0123456789"
    finally:
        t.close()
    assert "too many open handles" in daemon.log_since_start()


def test_handles_and_channels_are_counted_per_connection(daemon):
    """Several SFTP channels on one connection share one handle limit, and a
    connection has at most [ssh] max_sessions channels."""
    t, first = sftp_login(daemon)
    try:
        with first.open("/per-connection.txt", "wb") as f:
            f.write(b"x")
        channels = [first] + [paramiko.SFTPClient.from_transport(t) for _ in range(2)]
        held = []
        for sftp in channels:                       # 100 + 100 + 56 = the limit
            for _ in range(min(100, MAX_HANDLES - len(held))):
                held.append(sftp.open("/per-connection.txt", "rb"))
        for sftp in channels:
            with pytest.raises(IOError, match="too many open handles"):
                sftp.open("/per-connection.txt", "rb")
        more = []
        with pytest.raises(paramiko.ChannelException):
            for _ in range(MAX_SESSIONS):
                more.append(paramiko.SFTPClient.from_transport(t))
        assert len(channels) + len(more) == MAX_SESSIONS
    finally:
        t.close()


def test_ssh_connections_not_logged_in_are_limited_per_address_and_in_total(daemon):
    held = []
    try:
        held += [connect(daemon.sftp_port, "127.0.0.3") for _ in range(PER_ADDRESS)]
        one_too_many = connect(daemon.sftp_port, "127.0.0.3")
        held += [connect(daemon.sftp_port, "127.0.0.4")
                 for _ in range(MAX_STARTUPS - PER_ADDRESS)]
        over_total = connect(daemon.sftp_port, "127.0.0.5")
        held += [one_too_many, over_total]
        assert greeting(one_too_many) == b"", "over the per-address limit: closed at once"
        assert greeting(over_total) == b"", "over the total: closed at once"
        for s in held[:MAX_STARTUPS]:
            assert greeting(s).startswith(b"SSH-2.0-")
    finally:
        close_all(held)
    assert wait_until(lambda: sftp_works(daemon), 15), "logins work once those are gone"
    log = daemon.log_since_start()
    assert lines_with(log, "127.0.0.3") and lines_with(log, "127.0.0.5")


def test_ssh_connection_not_logged_in_is_closed_after_the_grace_time(daemon):
    t_in, sftp = sftp_login(daemon)
    idle = paramiko.Transport(connect(daemon.sftp_port, "127.0.0.6"))
    try:
        idle.banner_timeout = 5
        idle.start_client(timeout=10)            # banner and key exchange, then no login
        assert idle.is_active()
        assert wait_until(lambda: not idle.is_active(), GRACE + 10), \
            "a connection that does not log in is closed after the grace time"
        assert sftp.listdir("/") is not None, "a logged-in session stays"
    finally:
        idle.close()
        t_in.close()
    assert "not logged in" in daemon.log_since_start()


# -- WebDAV -------------------------------------------------------------------------------

def test_slowloris_does_not_stall_webdav_and_is_cut_at_the_header_deadline(daemon):
    slow = []
    try:
        for i in range(THREADS + 4):     # more than there are workers, from 4 addresses
            s = tls_connect(daemon, f"127.0.0.{10 + i % 4}")
            s.sendall(b"PROPFIND / HTTP/1.1\r\nHost: 127.0.0.1\r\nDepth: 0\r\n")
            slow.append(s)
        assert propfind_status(daemon) == 207, "a normal request is answered"
        for s in slow:
            assert closed_within(s, HEADER_TIMEOUT + 10), "half a header: closed"
    finally:
        close_all(slow)


def test_a_header_trickling_in_is_cut_at_the_deadline(daemon):
    """A byte every 0.3 s never trips a timeout per read; the deadline is for the whole."""
    s = tls_connect(daemon, "127.0.0.20")
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        deadline = time.monotonic() + HEADER_TIMEOUT + 10
        answered = False
        while not answered and time.monotonic() < deadline:
            if select.select([s], [], [], 0.3)[0]:
                answered = True
                break
            try:
                s.sendall(b"a")
            except OSError:
                answered = True
        assert answered and closed_within(s, 5), "the trickle was cut"
    finally:
        s.close()


def test_a_silent_connection_does_not_hold_up_the_tls_handshakes_of_others(daemon):
    silent = connect(daemon.webdav_port, "127.0.0.21")   # TCP only, never a ClientHello
    try:
        assert propfind_status(daemon) == 207
        assert closed_within(silent, HEADER_TIMEOUT + 10)
    finally:
        silent.close()


def test_webdav_connections_not_logged_in_are_limited_per_address(daemon):
    held = []
    try:
        held += [tls_connect(daemon, "127.0.0.30") for _ in range(PER_ADDRESS)]
        with pytest.raises(OSError):
            held.append(tls_connect(daemon, "127.0.0.30"))   # closed before the handshake
        assert propfind_status(daemon) == 207, "other addresses are served"
    finally:
        close_all(held)
    assert lines_with(daemon.log_since_start(), "127.0.0.30")


def test_logged_in_webdav_connections_do_not_count_against_the_limit(daemon):
    conns = []
    try:
        for _ in range(PER_ADDRESS + 2):
            conn = dav_connection(daemon, "127.0.0.32")
            conns.append(conn)
            assert logged_in_propfind(daemon, conn) == 207
        assert logged_in_propfind(daemon, conns[0]) == 207
    finally:
        for conn in conns:
            conn.close()


# -- bodies and headers before login -----------------------------------------------------

def _answer(sock, timeout: float) -> bytes:
    """What the server sends until it closes the connection (or `timeout` passes)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionError, ssl.SSLError):
            break
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_a_body_is_never_read_before_login(daemon, framing):
    """A request without (or with wrong) credentials is answered at once and its
    connection closed, however slowly its body comes: nothing waits for it."""
    trickling = []
    try:
        for i in range(THREADS + 2):       # more than there are workers, from 4 addresses
            s = tls_connect(daemon, f"127.0.0.{40 + i % 4}")
            head = (b"Transfer-Encoding: chunked\r\n" if framing == "chunked"
                    else b"Content-Length: 1000000\r\n")
            s.sendall(b"PROPFIND / HTTP/1.1\r\nHost: x\r\nDepth: 1\r\n" + head + b"\r\n"
                      + (b"1\r\n \r\n" if framing == "chunked" else b" "))
            trickling.append(s)
        for s in trickling:
            answer = _answer(s, HEADER_TIMEOUT + 5)
            assert answer.startswith(b"HTTP/1.1 401"), answer[:80]
            assert b"Connection: close" in answer
        assert propfind_status(daemon) == 207
    finally:
        close_all(trickling)


def test_headers_are_bounded_in_size(daemon):
    s = tls_connect(daemon, "127.0.0.50")
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        sent = 0
        try:
            while sent < 4 * 1024 * 1024:   # far more than max_header_size (128 KiB)
                s.sendall(b"X-Big: " + b"a" * 8000 + b"\r\n")
                sent += 8009
        except OSError:
            pass     # the server stopped reading: refused
        answer = _answer(s, 10)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 413"), answer[:80]
        assert sent < 4 * 1024 * 1024 or answer.startswith(b"HTTP/1.1 413")
    finally:
        s.close()
    assert propfind_status(daemon) == 207
