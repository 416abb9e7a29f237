"""Connection limits of the real daemon: what keeps both listeners serving while some
clients hold resources (security-hardening items 12 and 13).

- SFTP: a session gets at most MAX_HANDLES open handles.
"""
import socket

import paramiko
import pytest

from conftest import HOST, running_daemon

MAX_HANDLES = 256         # what limits@openssh.com announces


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-limits")


# -- helpers ----------------------------------------------------------------------------

def connect(port: int, source: str = HOST, timeout: float = 10) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=timeout, source_address=(source, 0))


def sftp_login(daemon, login: str = "alice", source: str = HOST):
    t = paramiko.Transport(connect(daemon.sftp_port, source))
    t.banner_timeout = 5
    t.connect(username=login, password=daemon.users[login].password)
    return t, paramiko.SFTPClient.from_transport(t)


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
