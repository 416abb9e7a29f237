"""`strongroom backup create|verify` and `strongroom restore` against the running daemon
(SQLite): a backup taken while files are uploaded over WebDAV (curl) and SFTP (OpenSSH)
restores into a new data directory that `serve` runs and whose `audit verify` passes;
every upload acknowledged before the backup reads back byte-exact over WebDAV; a
second backup copies only the new blobs; bad input is one line and a non-zero exit."""
import json
import os
import subprocess
import threading
import time

import pytest

from tests.support.daemon import Daemon, running_daemon, sftp_quote as q


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "backup")


class Uploader(threading.Thread):
    """Uploads new files over WebDAV and SFTP in turn until stopped (bounded); keeps
    {path: (bytes, time acknowledged)} of those acknowledged."""

    def __init__(self, daemon, limit: int = 60) -> None:
        super().__init__(daemon=True)
        self.d, self.limit = daemon, limit
        self.acked: dict[str, tuple[bytes, float]] = {}
        self.stop = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        for i in range(self.limit):
            if self.stop.is_set():
                return
            data = os.urandom(50_000 + i * 3_000)
            local = self.d.path(f"up-{i}.bin")
            local.write_bytes(data)
            if i % 2:
                path = f"/sftp-{i}.bin"
                r = self.d.run_sftp("alice", [f"put {q(local)} {q(path)}"])
                ok = r.returncode == 0
            else:
                path = f"/dav-{i}.bin"
                ok = self.d.request("alice", "PUT", path, "-T", local).status in (201, 204)
            if ok:
                self.acked[path] = (data, time.time())
            else:
                self.errors.append(path)


def restored_daemon(daemon, tmp_path_factory, backup) -> Daemon:
    """A new Daemon whose data directory is restored from `backup`, on ports of its own."""
    r = Daemon(tmp_path_factory.mktemp("restored"))
    out = r.cli("restore", backup, "--master-key", daemon.data_dir / "master.key")
    assert out.returncode == 0, out.stderr
    assert "restored" in out.stdout
    r.users = daemon.users
    r.set_options("server", webdav_port=r.webdav_port, sftp_port=r.sftp_port)
    return r


def reads_back(r: Daemon, acked: dict) -> None:
    for path, (data, _t) in acked.items():
        got = r.request("alice", "GET", path)
        assert got.status == 200 and got.body == data, (path, got.status, len(got.body))


def test_backup_while_uploading_restores_and_serves(daemon, tmp_path_factory):
    dest = tmp_path_factory.mktemp("bk") / "backup"
    uploads = Uploader(daemon)
    uploads.start()
    deadline = time.time() + 60
    while len(uploads.acked) < 6 and time.time() < deadline:
        time.sleep(0.2)
    started = time.time()
    first = daemon.cli("backup", "create", dest, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "the master key is not in the backup: keep it apart" in first.stdout
    uploads.stop.set()
    uploads.join(120)
    first_blobs = len(json.loads((dest / "manifest.json").read_text())["blobs"])
    late = daemon.path("late.bin")
    late.write_bytes(os.urandom(20_000))
    assert daemon.request("alice", "PUT", "/late.bin", "-T", late).status == 201
    uploads.acked["/late.bin"] = (late.read_bytes(), time.time())
    assert not uploads.errors and len(uploads.acked) >= 6
    assert not list(dest.rglob("*.part")) and not list(dest.rglob("master.key"))
    r = restored_daemon(daemon, tmp_path_factory, dest)
    r.start()
    try:
        before = {p: v for p, v in uploads.acked.items() if v[1] < started}
        assert before
        reads_back(r, before)
    finally:
        r.stop()
    verdict = r.cli("audit", "verify")
    assert verdict.returncode == 0, verdict.stderr + verdict.stdout

    # a second backup into the same folder: only the blobs written since are copied
    second = daemon.cli("backup", "create", dest, "--json")
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert summary["already_present"] == first_blobs
    assert summary["copied"] == summary["blobs"] - first_blobs >= 1
    third = json.loads(daemon.cli("backup", "create", dest, "--json").stdout)
    assert third["copied"] == 0 and third["blobs"] == summary["blobs"]
    check = daemon.cli("backup", "verify", dest)          # --data-dir: the appliance's key
    assert check.returncode == 0 and "every chunk authenticated" in check.stdout, check.stderr
    r2 = restored_daemon(daemon, tmp_path_factory, dest)
    r2.start()
    try:
        reads_back(r2, uploads.acked)
    finally:
        r2.stop()
    assert r2.cli("audit", "verify").returncode == 0


def test_bad_input_is_one_line_and_nothing_made(daemon, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    (root / "notbackup").mkdir()
    r = Daemon(root / "r")
    out = r.cli("restore", root / "notbackup", "--master-key", daemon.data_dir / "master.key")
    assert out.returncode != 0 and "is not a Strongroom backup" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not r.data_dir.exists()
    one = daemon.path("one.bin")
    one.write_bytes(b"one file")
    assert daemon.request("alice", "PUT", "/bad-input.txt", "-T", one).status in (201, 204)
    dest = root / "bk"
    assert daemon.cli("backup", "create", dest).returncode == 0
    (root / "wrong.key").write_bytes(os.urandom(32))
    out = r.cli("restore", dest, "--master-key", root / "wrong.key")
    assert out.returncode != 0 and not r.data_dir.exists()
    assert out.stderr.strip().startswith(
        "strongroom: error: the master key does not match this backup: the key given has id ")
    assert len(out.stderr.strip().splitlines()) == 1
    locked = root / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() != 0:
        out = daemon.cli("backup", "create", locked / "sub")
        assert out.returncode != 0 and "cannot write the backup" in out.stderr
    out = daemon.cli("backup", "create", daemon.data_dir / "strongroom.toml" / "bk")
    assert out.returncode != 0 and "cannot write the backup" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    blob = next(p for p in (dest / "blobs").rglob("*") if p.is_file())
    blob.unlink()
    out = subprocess.run(["strongroom", "backup", "verify", str(dest)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1 and f"blob {blob.name} is missing" in out.stdout
    assert "presence and sizes only" in out.stdout
    assert out.stderr.strip().endswith("has 1 problems")
