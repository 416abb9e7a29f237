"""Connection limits of the real daemon: what keeps both listeners serving while some
clients hold resources (security-hardening items 12 and 13).

- SFTP: a session gets at most MAX_HANDLES open handles; SSH connections that have not
  logged in are limited per address and in total, and closed after the grace time.

Clients connect from several loopback addresses (127.0.0.x) to stand for different
hosts; nothing leaves the machine. Every wait is bounded.
"""
import socket
import time

import paramiko
import pytest

from conftest import HOST, running_daemon

GRACE = 2                 # [ssh] login_grace_time, seconds
PER_ADDRESS = 4           # [ssh] max_startups_per_address
MAX_STARTUPS = 6          # [ssh] max_startups
MAX_HANDLES = 256         # what limits@openssh.com announces

LIMITS = {"ssh": dict(login_grace_time=f"{GRACE}s", max_startups=MAX_STARTUPS,
                     max_startups_per_address=PER_ADDRESS)}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-limits", LIMITS)


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


def close_all(socks) -> None:
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


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
