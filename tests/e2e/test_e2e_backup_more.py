"""Backups proven harder (issue 15), against the real daemon on SQLite and PostgreSQL:

- four clients upload (overwrites: versions; deletes: the trash) over WebDAV (curl) and
  SFTP (OpenSSH) while `strongroom backup create` runs as a process; the restore,
  served, has every version and trash item acknowledged before the backup started,
  byte-exact, read back over SFTP from the `@versions` and `@trash` views; every file it
  holds is one whole upload; nothing started after the backup ended; `audit verify` and
  `doctor` pass. A second backup copies only the new blobs (--json counts);
- `backup create` killed with SIGKILL while it copies a large blob leaves the previous
  manifest (and the backup it names) whole; the next run completes and verifies;
- bad input: DEST on a full file system (a 1 MiB tmpfs), on a read-only one, a tampered
  backup (a byte flipped, a blob removed, the manifest edited), a restore into a
  non-empty directory: one line, non-zero, and the live appliance unchanged.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.support import postgres
from tests.support.daemon import Daemon, running_on, sftp_quote as q

pytestmark = pytest.mark.slow
# client: its user; acme and beta (alice, bob) come with every provisioned daemon
FOUR = {"acme": "alice", "beta": "bob", "gamma": "gwen", "delta": "dora"}
STEPS = 40              # operations per client at most (the writers stop earlier)


def more_clients(d: Daemon) -> None:
    for client in ("gamma", "delta"):
        d.cli_in_process("client", "add", client, "--quota", "10GiB")
        d.add_user(FOUR[client], client, totp=False)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def daemon(request, tmp_path_factory):
    yield from running_on(request.param, tmp_path_factory, "backup-more", setup=more_clients)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Op:
    kind: str                   # "put" or "delete"
    path: str
    data: bytes | None
    started: float              # time.monotonic()
    acked: float | None = None  # None: not acknowledged


class Writer(threading.Thread):
    """One client's user: overwrites /w0..w3.bin (versions) and puts /tN.bin once, then
    deletes it (the trash), over WebDAV and SFTP in turn, until stopped (bounded)."""

    def __init__(self, d: Daemon, login: str) -> None:
        super().__init__(daemon=True)
        self.d, self.login = d, login
        self.ops: list[Op] = []
        self.stop = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        try:
            self.steps()
        except Exception as e:          # a broken writer fails the test, not just a thread
            self.errors.append(repr(e))

    def steps(self) -> None:
        for i in range(STEPS):
            if self.stop.is_set():
                return
            if i % 5 == 4:
                self.delete_file(f"/t{i - 1}.bin", sftp=bool(i % 2))
            else:
                path = f"/t{i}.bin" if i % 5 == 3 else f"/w{i % 4}.bin"
                data = f"{self.login} {path} {i}\n".encode() + os.urandom(20_000 + 7_000 * i)
                self.upload(path, data, sftp=bool(i % 2))

    def upload(self, path: str, data: bytes, sftp: bool) -> None:
        local = self.d.path(f"{self.login}.bin")
        local.write_bytes(data)
        op = Op("put", path, data, time.monotonic())
        self.ops.append(op)
        if sftp:
            ok = self.d.run_sftp(self.login, [f"put {q(local)} {q(path)}"]).returncode == 0
        else:
            ok = self.d.request(self.login, "PUT", path, "-T", local).status in (201, 204)
        self.finish(op, ok)

    def delete_file(self, path: str, sftp: bool) -> None:
        op = Op("delete", path, None, time.monotonic())
        self.ops.append(op)
        if sftp:
            ok = self.d.run_sftp(self.login, [f"rm {q(path)}"]).returncode == 0
        else:
            ok = self.d.request(self.login, "DELETE", path).status == 204
        self.finish(op, ok)

    def finish(self, op: Op, ok: bool) -> None:
        if ok:
            op.acked = time.monotonic()
        else:
            self.errors.append(f"{op.kind} {op.path}")

    def acked(self) -> int:
        return sum(op.acked is not None for op in self.ops)


def cli_json(d: Daemon, *args) -> dict:
    out = d.cli(*args, "--json", timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@contextmanager
def restore_target(d: Daemon):
    """{} (SQLite in the new data directory), or for a daemon on PostgreSQL
    {"database_url": a throwaway database}."""
    if "postgresql" not in (d.data_dir / "strongroom.toml").read_text():
        yield {}
        return
    with postgres.fresh_database() as url:
        yield {"database_url": url}


def restore_to(d: Daemon, tmp_path_factory, backup, **options) -> Daemon:
    """A Daemon on a new data directory restored from `backup`, on ports of its own."""
    r = Daemon(tmp_path_factory.mktemp("restored"))
    out = r.cli("restore", backup, "--master-key", d.data_dir / "master.key",
                *(("--database-url", options["database_url"]) if options else ()))
    assert out.returncode == 0, out.stderr
    r.users = d.users
    r.set_options("server", webdav_port=r.webdav_port, sftp_port=r.sftp_port)
    return r


def place(rel: str) -> tuple[str, str]:
    """(where, tree path) of a downloaded file: ("live", itself), or the file whose
    version (@versions/<path>/<'date vN name'>) or trash item (@trash/<'date dN name'>)
    it is."""
    if rel.startswith("@versions/"):
        return "version", "/" + rel.removeprefix("@versions/").rsplit("/", 1)[0]
    if rel.startswith("@trash/"):
        return "trash", "/" + rel.removeprefix("@trash/").split(" ", 3)[3]
    return "live", "/" + rel


def download_all(r: Daemon, login: str) -> dict[str, set[tuple[str, str]]]:
    """{sha of content: {(where, tree path)}} of every file the user sees, views too."""
    local = r.work / f"all-{login}"
    local.mkdir()
    got = r.run_sftp(login, [f"get -R / {q(local)}"], timeout=300)
    assert got.returncode == 0, got.stderr
    found: dict[str, set[tuple[str, str]]] = {}
    for f in local.rglob("*"):
        if f.is_file():
            found.setdefault(sha(f.read_bytes()), set()).add(place(
                f.relative_to(local).as_posix()))
    return found


def check_client(found: dict[str, set[tuple[str, str]]], ops: list[Op], began: float,
                 ended: float) -> None:
    puts = {sha(op.data): op for op in ops if op.kind == "put" and op.data}
    for digest, places in found.items():           # each file one whole upload, in place
        assert digest in puts, f"{places}: not one whole upload (half-written?)"
        assert {path for _, path in places} == {puts[digest].path}, places
        assert puts[digest].started < ended, f"{places}: written after the backup ended"
    for op in ops:                                 # everything acknowledged before: there
        if op.kind == "put" and op.acked is not None and op.acked < began:
            assert sha(op.data) in found, f"{op.path} acknowledged before the backup: missing"
    live = {path for places in found.values() for where, path in places if where == "live"}
    for op in ops:                                 # deleted before: in the trash only
        if op.kind == "delete" and op.acked is not None and op.acked < began:
            last = [p for p in ops if p.kind == "put" and p.path == op.path][-1]
            assert ("trash", op.path) in found[sha(last.data)] and op.path not in live


def test_backup_during_four_clients_uploads_restores_every_version(daemon, tmp_path_factory):
    writers = [Writer(daemon, login) for login in FOUR.values()]
    for w in writers:
        w.start()
    deadline = time.monotonic() + 120
    while min(w.acked() for w in writers) < 10 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert min(w.acked() for w in writers) >= 10, [w.errors for w in writers]
    dest = tmp_path_factory.mktemp("bk") / "backup"
    began = time.monotonic()
    first = cli_json(daemon, "backup", "create", dest)
    ended = time.monotonic()
    for w in writers:       # a few more after it, for the incremental backup
        w.stop.set()
        w.join(300)
    assert not [e for w in writers for e in w.errors]
    print(f"\nbackup of {first['blobs']} blobs, {first['blob_bytes'] / 2**20:.1f} MiB "
          f"during uploads: {ended - began:.2f} s (process included)")
    with restore_target(daemon) as options:    # PostgreSQL's backup into PostgreSQL
        r = restore_to(daemon, tmp_path_factory, dest, **options)
        r.start()
        try:
            for w in writers:
                check_client(download_all(r, w.login), w.ops, began, ended)
        finally:
            r.stop()
        verdict = r.cli("audit", "verify")
        assert verdict.returncode == 0, verdict.stdout + verdict.stderr
        doctor = r.cli("doctor")
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr

    late = daemon.path("late.bin")
    late.write_bytes(os.urandom(100_000))
    assert daemon.request("bob", "PUT", "/late.bin", "-T", late).status in (201, 204)
    t0 = time.monotonic()
    second = cli_json(daemon, "backup", "create", dest)
    print(f"incremental backup: {second['copied']} of {second['blobs']} blobs copied, "
          f"{time.monotonic() - t0:.2f} s (process included)")
    assert second["already_present"] == first["blobs"] and second["pruned"] == 0
    assert second["copied"] == second["blobs"] - first["blobs"] >= 1
    assert cli_json(daemon, "backup", "create", dest)["copied"] == 0


def test_a_killed_backup_leaves_the_previous_one_whole(daemon, tmp_path_factory):
    dest = tmp_path_factory.mktemp("killed") / "backup"
    cli_json(daemon, "backup", "create", dest)
    before = (dest / "manifest.json").read_bytes()
    for attempt in range(3):            # until the kill lands while a blob is copied
        big = daemon.path("big.bin")
        with open(big, "wb") as f:
            for _ in range(96):
                f.write(os.urandom(1 << 20))
        assert daemon.request("alice", "PUT", f"/big-{attempt}.bin", "-T", big).status == 201
        big.unlink()
        if kill_mid_copy(daemon, dest):
            break
    else:
        pytest.fail("backup create was never caught copying a 96 MiB blob in 3 tries")
    assert (dest / "manifest.json").read_bytes() == before     # not half a snapshot
    check = daemon.cli("backup", "verify", dest)
    assert check.returncode == 0, check.stdout + check.stderr
    after = cli_json(daemon, "backup", "create", dest)
    assert after["copied"] >= 1 and not list(dest.rglob("*.part"))
    assert len(list((dest / "snapshots").iterdir())) == 1
    check = daemon.cli("backup", "verify", dest)
    assert check.returncode == 0 and "every chunk authenticated" in check.stdout, check.stdout


def kill_mid_copy(d: Daemon, dest) -> bool:
    """Start `backup create DEST`, SIGKILL it once a .part file is in DEST; whether it
    was caught copying (False: it ended first)."""
    proc = subprocess.Popen(["strongroom", "backup", "create", str(dest), "--data-dir",
                             str(d.data_dir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(60_000):                # bounded: 60 000 looks, ~5 ms apart
            if proc.poll() is not None:
                return False
            if any((dest / "blobs").rglob("*.part")):
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                return True
            time.sleep(0.005)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


@contextmanager
def tmpfs(where, size: str):
    where.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(where)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {made.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def one_line_failure(out: subprocess.CompletedProcess, says: str) -> None:
    assert out.returncode != 0, out.stdout
    assert len(out.stderr.strip().splitlines()) == 1 and says in out.stderr, out.stderr


def still_whole(d: Daemon, files: dict[str, bytes]) -> None:
    """The live appliance is unchanged: its files read back, doctor is clean."""
    for path, data in files.items():
        got = d.request("alice", "GET", path)
        assert got.status == 200 and got.body == data, path
    doctor = d.cli("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_dest_on_a_full_or_read_only_file_system(daemon, tmp_path_factory):
    root = tmp_path_factory.mktemp("fs")
    data = os.urandom(1_500_000)        # more than the 1 MiB file system holds
    local = daemon.path("full.bin")
    local.write_bytes(data)
    assert daemon.request("alice", "PUT", "/full.bin", "-T", local).status in (201, 204)
    with tmpfs(root / "small", "1m") as small:
        one_line_failure(daemon.cli("backup", "create", small / "bk"),
                         "no space left for the backup")
        assert not (small / "bk" / "manifest.json").exists()
        assert not list(small.rglob("*.part")) and not list(small.rglob("*.jsonl"))
    with tmpfs(root / "ro", "512m") as ro:
        cli_json(daemon, "backup", "create", ro / "bk")
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        for dest in (ro / "bk", ro / "new"):
            one_line_failure(daemon.cli("backup", "create", dest),
                             f"cannot write the backup to {dest}: Read-only file system")
        assert daemon.cli("backup", "verify", ro / "bk").returncode == 0
    still_whole(daemon, {"/full.bin": data})


def flip_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_tampered_backup_is_named_and_never_restored(daemon, tmp_path_factory):
    root = tmp_path_factory.mktemp("tamper")
    data = os.urandom(300_000)
    local = daemon.path("tamper.bin")
    local.write_bytes(data)
    assert daemon.request("alice", "PUT", "/tamper.bin", "-T", local).status in (201, 204)
    good = root / "good"
    cli_json(daemon, "backup", "create", good)
    blob = max((p for p in (good / "blobs").rglob("*") if p.is_file()),
               key=lambda p: p.stat().st_size)
    cases = [("flipped", lambda bk: flip_byte(bk / "blobs" / blob.parent.name / blob.name),
              f"blob {blob.name} (version", False),
             ("removed", lambda bk: (bk / "blobs" / blob.parent.name / blob.name).unlink(),
              f"blob {blob.name} is missing", True),
             ("unlisted", lambda bk: edit_manifest(bk, lambda m: m["blobs"].pop()),
              "the manifest does not authenticate", False),
             ("resized", lambda bk: edit_manifest(bk, grow_first_blob),
              "the manifest does not authenticate", True),
             ("table", edit_table, "snapshot file tables/nodes.jsonl does not authenticate",
              True)]
    for name, tamper, named, seen_without_key in cases:
        bk = root / name
        shutil.copytree(good, bk)
        tamper(bk)
        plain = subprocess.run(["strongroom", "backup", "verify", str(bk)],
                               capture_output=True, text=True, timeout=120)
        assert (plain.returncode != 0) is seen_without_key, (name, plain.stdout)
        assert "the manifest was not authenticated" in plain.stdout
        keyed = daemon.cli("backup", "verify", bk)
        assert keyed.returncode == 1 and named in keyed.stdout, (name, keyed.stdout)
        assert len(keyed.stderr.strip().splitlines()) == 1
        r = Daemon(root / f"r-{name}")
        out = r.cli("restore", bk, "--master-key", daemon.data_dir / "master.key")
        one_line_failure(out, "does not verify")
        assert named in out.stderr and not r.data_dir.exists()
    still_whole(daemon, {"/tamper.bin": data})


def edit_manifest(bk, change) -> None:
    manifest = json.loads((bk / "manifest.json").read_text())
    change(manifest)
    (bk / "manifest.json").write_text(json.dumps(manifest))


def grow_first_blob(manifest: dict) -> None:
    manifest["blobs"][0]["size"] += 1


def edit_table(bk) -> None:
    """A row of a table file changed (its digest in the manifest left alone)."""
    manifest = json.loads((bk / "manifest.json").read_text())
    path = bk / manifest["snapshot"] / "tables" / "nodes.jsonl"
    text = path.read_text()
    assert "tamper.bin" in text
    path.write_text(text.replace("tamper.bin", "tamperX.bin"))


def test_restore_into_a_non_empty_directory_changes_nothing(daemon, tmp_path_factory):
    root = tmp_path_factory.mktemp("nonempty")
    cli_json(daemon, "backup", "create", root / "bk")
    r = Daemon(root / "r")
    r.data_dir.mkdir()
    (r.data_dir / "mine.txt").write_text("an admin's file")
    out = r.cli("restore", root / "bk", "--master-key", daemon.data_dir / "master.key")
    one_line_failure(out, "is not empty: restore builds a new data directory")
    assert [p.name for p in r.data_dir.iterdir()] == ["mine.txt"]
    assert (r.data_dir / "mine.txt").read_text() == "an admin's file"
    still_whole(daemon, {})
