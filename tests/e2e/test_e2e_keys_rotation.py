"""Key rotation against the real daemon (issue 15), on SQLite and on PostgreSQL:
`keys rotate-client` and `keys rotate-master` (CLI processes) while uploads and
downloads run over WebDAV (curl) and SFTP (OpenSSH sftp); afterwards every file reads
back byte-exact and doctor is clean. `keys rotate-master --batch 1` killed with
SIGKILL midway resumes when run again, the old key id is gone from `keys status`, and
the restarted daemon serves everything. A master key that is not the appliance's
stops `serve` with one line and a non-zero status."""
import json
import os
import signal
import subprocess
import threading

import pytest
from sqlalchemy import create_engine, text

from strongroom import config as configmod
from tests.support.daemon import running_on

# over a minute in a full run: handed out first (tests/conftest.py)
pytestmark = pytest.mark.slow

ROUNDS = 12          # traffic rounds while the rotations run (each: a PUT, a GET, an SFTP put)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def daemon(request, tmp_path_factory):
    yield from running_on(request.param, tmp_path_factory, "e2e-keys")


def _content(name: str) -> bytes:
    return (f"{name}: ".encode() + os.urandom(16).hex().encode()) * 2000


def _put(daemon, name: str, data: bytes) -> None:
    local = daemon.work / name
    local.write_bytes(data)
    r = daemon.request("alice", "PUT", f"/{name}", "--data-binary", f"@{local}")
    assert r.status in (201, 204), r


def _get(daemon, name: str) -> bytes:
    r = daemon.request("alice", "GET", f"/{name}")
    assert r.status == 200, r
    return r.body


class Traffic(threading.Thread):
    """Uploads and downloads over both protocols until stopped (at most ROUNDS rounds)."""

    def __init__(self, daemon, written: dict[str, bytes]):
        super().__init__(daemon=True)
        self.d, self.written, self.error = daemon, written, None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            for i in range(ROUNDS):
                if self.stop.is_set() and i >= 2:
                    return
                self._round(i)
        except BaseException as e:       # reported by the test
            self.error = e

    def _round(self, i: int) -> None:
        name, data = f"dav-{i}.bin", _content(f"dav-{i}")
        _put(self.d, name, data)
        self.written[name] = data
        old = sorted(self.written)[i % len(self.written)]
        assert _get(self.d, old) == self.written[old]
        sname, sdata = f"sftp-{i}.bin", _content(f"sftp-{i}")
        (self.d.work / sname).write_bytes(sdata)
        proc = self.d.run_sftp("alice", [f"put {sname} /{sname}"])
        assert proc.returncode == 0, proc.stderr
        self.written[sname] = sdata


def _status(daemon) -> dict:
    return json.loads(daemon.cli("keys", "status", "--json", check=True).stdout)


def _assert_all_read_back(daemon, written: dict[str, bytes]) -> None:
    for name, data in written.items():
        assert _get(daemon, name) == data, name
    probe = [f"get /{n} back-{n}" for n in list(written)[:5]]
    proc = daemon.run_sftp("alice", probe)
    assert proc.returncode == 0, proc.stderr
    for n in list(written)[:5]:
        assert (daemon.work / f"back-{n}").read_bytes() == written[n]


def test_rotations_while_both_protocols_upload_and_download(daemon):
    written = {f"before-{i}.bin": _content(f"before-{i}") for i in range(10)}
    for name, data in written.items():
        _put(daemon, name, data)
    traffic = Traffic(daemon, written)
    traffic.start()
    try:
        client = daemon.cli("keys", "rotate-client", "acme", "--batch", "1", "--json")
        master = daemon.cli("keys", "rotate-master", "--batch", "1", "--json")
    finally:
        traffic.stop.set()
        traffic.join(timeout=600)
    assert traffic.error is None, traffic.error
    assert client.returncode == 0, client.stderr
    assert master.returncode == 0, master.stderr
    out = json.loads(master.stdout)
    assert set(_status(daemon)["wrapped_by_master"]) == {out["new_key_id"]}
    _assert_all_read_back(daemon, written)
    doctor = daemon.cli("doctor", "--json")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def _rewrapped(daemon) -> int:
    """How many client keys the next master key wraps already (0: no rotation)."""
    url = configmod.load(daemon.data_dir).database.url or \
        f"sqlite:///{daemon.data_dir / 'strongroom.db'}"
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            row = c.execute(text("SELECT key_id FROM appliance_keys "
                                 "WHERE name = 'master-next'")).first()
            if row is None:
                return 0
            return c.execute(text("SELECT count(*) FROM clients WHERE master_key_id = :k"),
                             {"k": row[0]}).scalar_one()
    finally:
        engine.dispose()


def test_a_killed_master_rotation_resumes_and_the_daemon_serves_after(daemon):
    for i in range(80):
        daemon.cli_in_process("client", "add", f"many-{i:02d}")
    old = _status(daemon)["master_key_id"]
    proc = subprocess.Popen(["strongroom", "keys", "rotate-master", "--batch", "1",
                             "--data-dir", str(daemon.data_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(100000):           # bounded: until a few batches are committed
        if _rewrapped(daemon) >= 3 or proc.poll() is not None:
            break
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL      # killed midway, not finished
    assert "keys rotate-master" in " ".join(_status(daemon)["rotations"])
    again = daemon.cli("keys", "rotate-master", "--json")
    assert again.returncode == 0, again.stderr
    status = _status(daemon)
    assert old not in status["wrapped_by_master"] and status["next_master_key_id"] is None
    assert daemon.cli("doctor").returncode == 0
    daemon.stop()
    daemon.start()
    _put(daemon, "after-restart.bin", b"after the restart")
    assert _get(daemon, "after-restart.bin") == b"after the restart"
    assert _get(daemon, "before-0.bin")


def test_a_wrong_master_key_stops_the_start_with_one_line(daemon):
    key_file = daemon.data_dir / "master.key"
    right = key_file.read_bytes()
    daemon.stop()
    try:
        key_file.write_bytes(os.urandom(32))
        proc = daemon.cli("serve", timeout=120)
        assert proc.returncode != 0
        errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and "is not this appliance's" in errors[0], proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        key_file.write_bytes(right)
        daemon.start()
    assert _get(daemon, "before-1.bin")
