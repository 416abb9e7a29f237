"""Starting the daemon, as an admin gets it wrong: a second `serve` on a data
directory in use, ports in use, an address not on this machine, files missing,
a database that is wrong. Each is one line on stderr, a non-zero exit, and
nothing touched: a live upload of the running daemon completes."""
import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.daemon import HOST, TIMEOUT, Daemon, free_ports, one_line

pytestmark = pytest.mark.slow     # a long module: started first (tests/conftest.py)


def serve(data_dir, timeout: float = 60) -> subprocess.CompletedProcess:
    """`strongroom serve` that is expected to give up at once."""
    return subprocess.run(["strongroom", "serve", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def spare(tmp_path) -> Daemon:
    """A second data directory, made by `init` and not running."""
    d = Daemon(tmp_path / "spare")
    d.cli("init", "--host", HOST, "--webdav-port", d.webdav_port, "--sftp-port", d.sftp_port,
          check=True)
    return d


def test_second_serve_names_the_pid_and_spares_a_live_upload(daemon):
    payload = os.urandom(8 * 1024 * 1024)
    src = daemon.path("big.bin")
    src.write_bytes(payload)
    # 32 s at 256 KiB/s: still running when a second serve answers on a loaded machine
    upload = daemon.curl_background("alice", "--limit-rate", "256K", "-T", src,
                                     "-o", "/dev/null", "-w", "%{http_code}",
                                     daemon.url("/live.bin"))
    deadline = time.monotonic() + 30
    while not list(daemon.staging_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(daemon.staging_dir.iterdir()), "the upload did not start"
    line = one_line(serve(daemon.data_dir))
    assert f"PID {daemon.proc.pid}" in line
    assert upload.poll() is None, "the upload ended before the second serve answered"
    assert list(daemon.staging_dir.iterdir()), "the second serve emptied the staging area"
    out, err = upload.communicate(timeout=TIMEOUT)
    assert out.decode() == "201", err
    got = daemon.request("alice", "GET", "/live.bin")
    assert hashlib.sha256(got.body).digest() == hashlib.sha256(payload).digest()
    assert daemon.running


def test_ports_in_use_are_one_line(daemon, spare):
    spare.set_options("server", webdav_port=daemon.webdav_port)
    assert f"port {daemon.webdav_port} on {HOST} is already in use" in one_line(
        serve(spare.data_dir))
    spare.set_options("server", webdav_port=free_ports(1)[0], sftp_port=daemon.sftp_port)
    assert f"port {daemon.sftp_port} on {HOST} is already in use" in one_line(
        serve(spare.data_dir))


def test_address_not_on_this_machine(spare):
    spare.set_options("server", host="192.0.2.7")    # TEST-NET-1: never routed
    assert "192.0.2.7 is not an address of this machine" in one_line(serve(spare.data_dir))


@pytest.mark.parametrize("option", ["cert_file", "key_file"])
def test_missing_tls_file(spare, option):
    target = _option_path(spare, "tls", option)
    os.unlink(target)
    line = one_line(serve(spare.data_dir))
    assert str(target) in line and f"[tls] {option}" in line


def test_missing_host_key(spare):
    target = _option_path(spare, "ssh", "host_key_ed25519")
    os.unlink(target)
    assert str(target) in one_line(serve(spare.data_dir))


@pytest.mark.parametrize("url, says", [
    ("postgresql://u:secret@127.0.0.1:9/db", "pip install 'strongroom[postgres]'"),
    ("postgresql+psycopg2://u:secret@127.0.0.1:9/db", "cannot use the database"),
    ("not a url", "[database] url is not a database URL"),
])
def test_wrong_database(spare, url, says):
    spare.set_options("database", url=url)
    for proc in (serve(spare.data_dir), spare.cli("client", "list")):
        line = one_line(proc)
        assert says in line and "secret" not in line


def test_no_config_names_the_directory(tmp_path):
    where = tmp_path / "nowhere"
    proc = subprocess.run(["strongroom", "client", "list", "--data-dir", str(where)],
                          capture_output=True, text=True, timeout=TIMEOUT)
    line = one_line(proc)
    assert str(where) in line and "--data-dir" in line and "STRONGROOM_DATA_DIR" in line
    assert not where.exists()
    assert str(where) in one_line(serve(where))


def _option_path(d: Daemon, section: str, option: str):
    """The file an option of the data directory's config names."""
    from strongroom.config import load
    return Path(getattr(getattr(load(d.data_dir), section), option))
