"""Bad input from clients gets a clear refusal, one log line, no traceback, and
changes nothing, against the real daemon (found by an attack on the hardening
work): requests on the top folder, a Destination that is not UTF-8, a password
that is not UTF-8, modification times no client can show, a size change through
SETSTAT, a lock clear without a tree. Also: the SSH banner names no library."""
import json
import socket
import time

import paramiko
import pytest

from tests.support.daemon import HOST, running_daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-badinput")


def _put(d, path, data=b"x", *headers):
    src = d.path("src")
    src.write_bytes(data)
    return d.request("alice", "PUT", path, "-T", src, *headers).status


@pytest.mark.parametrize("method", ["DELETE", "PUT", "MOVE", "COPY"])
def test_the_top_folder_is_refused_not_a_500(daemon, method):
    r = daemon.request("alice", method, "/", "-H", f"Destination: {daemon.url('/copy')}")
    assert 400 <= r.status < 500, r.status
    assert daemon.request("alice", "PROPFIND", "/", "-H", "Depth: 0").status == 207


@pytest.mark.parametrize("dest", ["/", "/%ff%fe", "/../../x"])
def test_a_bad_destination_is_refused(daemon, dest):
    assert _put(daemon, "/moved-not.txt", b"stays") in (201, 204)
    r = daemon.request("alice", "MOVE", "/moved-not.txt", "-H",
                       f"Destination: {daemon.base_url}{dest}", raw=True)
    assert 400 <= r.status < 500, r.status
    assert daemon.request("alice", "GET", "/moved-not.txt").body == b"stays"


def test_no_traceback_came_of_it(daemon):
    assert "Traceback" not in daemon.log_text()


def test_a_password_that_is_not_utf8_is_a_counted_failure(daemon):
    t = paramiko.Transport((HOST, daemon.sftp_port))
    t.start_client(timeout=10)
    try:
        assert t.remote_version.startswith("SSH-2.0-Strongroom")
        with pytest.raises(paramiko.AuthenticationException):
            t.auth_password("alice", b"\xff\xfe\xfd-not-utf8")
    finally:
        t.close()
    events = json.loads(daemon.cli("audit", "list", "--user", "alice", "--action", "login",
                                   "--failed", "--json", check=True).stdout)
    assert events and events[-1]["protocol"] == "sftp"
    daemon.cli("user", "unlock", "alice", check=True)


def test_times_no_client_can_show_are_refused(daemon):
    assert _put(daemon, "/mtime.txt", b"x", "-H", "X-OC-Mtime: 99999999999999999999") == 201
    listing = daemon.request("alice", "PROPFIND", "/", "-H", "Depth: 1")
    assert listing.status == 207
    assert daemon.request("alice", "GET", "/mtime.txt").status == 200
    t = paramiko.Transport((HOST, daemon.sftp_port))
    t.connect(username="alice", password=daemon.users["alice"].password)
    try:
        sftp = paramiko.SFTPClient.from_transport(t)
        assert "mtime.txt" in sftp.listdir("/")
        with pytest.raises(OSError):        # truncating in place is not supported
            sftp.truncate("/mtime.txt", 0)
        assert sftp.stat("/mtime.txt").st_size == 1
    finally:
        t.close()


def test_clearing_locks_needs_a_tree(daemon):
    bad = daemon.cli("locks", "clear", "/../..")
    assert bad.returncode == 1 and "inside a tree" in bad.stderr
