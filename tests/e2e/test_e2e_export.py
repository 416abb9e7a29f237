"""`strongroom client export` against the running daemon: files uploaded over WebDAV
(curl) and SFTP (OpenSSH) come back byte for byte from the tar, manifest.json's
sha256 match, --versions holds every version, memory does not grow with file size,
and an unknown client, an unwritable folder or a full disk leave no partial file,
one line on stderr and a non-zero exit."""
import hashlib
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.support.daemon import TIMEOUT, sftp_quote as q

BIG = 48 * 1024 * 1024


def upload_dav(daemon, path: str, data: bytes) -> None:
    local = daemon.path("dav.bin")
    local.write_bytes(data)
    r = daemon.request("alice", "PUT", path, "-T", local)
    assert r.status in (201, 204), r


def upload_sftp(daemon, path: str, data: bytes) -> None:
    local = daemon.path("sftp.bin")
    local.write_bytes(data)
    r = daemon.run_sftp("alice", [f"put {q(local)} {q(path)}"])
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def uploaded(daemon):
    """What alice uploaded to acme: {path below the tree: bytes}, and every version."""
    assert daemon.request("alice", "MKCOL", "/Verträge").status == 201
    assert daemon.run_sftp("alice", ["mkdir /empty", "mkdir /sftp"]).returncode == 0
    files = {"/Verträge/offer 1.pdf": os.urandom(300_000), "/notes.txt": b"second",
             "/sftp/scan.bin": os.urandom(1_000_000), "/manifest.json": b"{}"}
    history = {"/notes.txt": [b"first", b"second"]}
    upload_dav(daemon, "/notes.txt", b"first")
    for path, data in files.items():
        (upload_sftp if path.startswith("/sftp") else upload_dav)(daemon, path, data)
    return files, history


def export(daemon, name: str, to: Path, *args):
    return daemon.cli("client", "export", name, "--to", to, *args)


def read_tar(path: Path) -> dict:
    with tarfile.open(path) as tar:
        return {m.name: (m, tar.extractfile(m).read() if m.isfile() else None)
                for m in tar.getmembers()}


def test_the_tar_holds_what_was_uploaded(daemon, uploaded, tmp_path):
    files, _ = uploaded
    # an upload going on during the export neither disturbs it nor appears half
    busy = daemon.path("busy.bin")
    busy.write_bytes(os.urandom(20_000_000))
    during = daemon.curl_background("alice", "-T", busy, daemon.url("/busy.bin"))
    proc = export(daemon, "acme", tmp_path / "acme.tar", "--json")
    during.wait(TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    got = read_tar(tmp_path / "acme.tar")
    for path, data in files.items():
        assert got[f"acme{path}"][1] == data, path
    assert got["acme/empty"][0].isdir() and got["acme/Verträge"][0].isdir()
    if "acme/busy.bin" in got:          # listed before or after the upload committed
        assert got["acme/busy.bin"][1] == busy.read_bytes()
    manifest = json.loads(got["manifest.json"][1])
    assert {f["path"] for f in manifest["files"]} >= {f"/acme{p}" for p in files}
    for f in manifest["files"]:
        data = got[f["member"]][1]
        assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["size"] == len(data)
        assert abs(got[f["member"]][0].mtime - time.time()) < 600
    assert summary["files"] == len(manifest["files"]) and not summary["with_versions"]
    assert not (tmp_path / "acme.tar.partial").exists()
    events = json.loads(daemon.cli("audit", "list", "--action", "client-export", "--json",
                                   check=True).stdout)
    assert events[-1]["path"] == "/acme" and "versions=no" in events[-1]["detail"]


def test_versions_as_the_view_names_them(daemon, uploaded, tmp_path):
    _, history = uploaded
    proc = export(daemon, "acme", tmp_path / "all.tar", "--versions")
    assert proc.returncode == 0 and "versions" in proc.stdout, proc.stderr
    got = read_tar(tmp_path / "all.tar")
    view = daemon.run_sftp("alice", ["ls -1 /@versions/notes.txt"])
    names = [line.rsplit("/", 1)[-1] for line in view.stdout.decode().splitlines()
             if line.strip() and not line.startswith("sftp>")]
    assert len(names) == 2
    assert [got[f"acme/@versions/notes.txt/{n}"][1] for n in names] == history["/notes.txt"]
    manifest = json.loads(got["manifest.json"][1])
    notes = next(f for f in manifest["files"] if f["path"] == "/acme/notes.txt")
    assert len(notes["versions"]) == 2
    for v in manifest["versions"]:
        assert v["sha256"] == hashlib.sha256(got[v["member"]][1]).hexdigest()


def max_rss_kib(argv) -> tuple[int, int]:
    """(exit status, peak resident memory in KiB) of a command."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss


def test_memory_does_not_grow_with_file_size(daemon, tmp_path):
    upload_dav(daemon, "/small.bin", b"x" * 1000)     # beta's tree stays small
    local = daemon.path("big.bin")
    with open(local, "wb") as f:
        for _ in range(BIG // (1 << 20)):
            f.write(os.urandom(1 << 20))
    r = daemon.curl("bob", "-T", local, daemon.url("/big.bin"))
    assert r.returncode == 0, r.stderr
    cli = ["strongroom", "client", "export", "--data-dir", str(daemon.data_dir), "--to"]
    _, small = max_rss_kib(cli + [str(tmp_path / "a.tar"), "acme"])
    code, big = max_rss_kib(cli + [str(tmp_path / "b.tar"), "beta"])
    assert code == 0
    with tarfile.open(tmp_path / "b.tar") as tar:
        assert tar.getmember("beta/big.bin").size == BIG
    assert big - small < 16 * 1024, (small, big)      # KiB: far less than the 48 MiB file


def test_an_unknown_client_is_one_line(daemon, tmp_path):
    proc = export(daemon, "acmee", tmp_path / "x.tar")
    (line,) = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and line.startswith("strongroom: error: no client named 'acmee'")
    assert list(tmp_path.iterdir()) == []


def mount(where: Path, *options: str) -> None:
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (root needed): {r.stderr.strip()}")


@pytest.fixture
def mounts():
    made: list[Path] = []
    yield made
    for where in made:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_an_unwritable_folder_is_one_line(daemon, uploaded, tmp_path, mounts):
    ro = tmp_path / "ro"
    mount(ro, "size=4m", "ro")      # root may write anywhere else
    mounts.append(ro)
    proc = export(daemon, "acme", ro / "acme.tar")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"strongroom: error: cannot write {ro / 'acme.tar'}: Read-only file system"]
    assert list(ro.iterdir()) == []


def test_a_full_disk_removes_the_partial(daemon, uploaded, tmp_path, mounts):
    small = tmp_path / "small"
    mount(small, "size=1m", "mode=0700")    # the tree is larger than 1 MiB
    mounts.append(small)
    proc = export(daemon, "acme", small / "acme.tar")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"strongroom: error: no space left for {small / 'acme.tar.partial'} "
        "(the partial export was removed)"]
    assert list(small.iterdir()) == []
    events = json.loads(daemon.cli("audit", "list", "--action", "client-export", "--json",
                                   check=True).stdout)
    assert all("acme.tar.partial" not in str(e) for e in events)


def test_a_terminal_shows_a_progress_bar(daemon, uploaded, tmp_path):
    leader, follower = os.openpty()
    try:
        proc = subprocess.Popen(["strongroom", "client", "export", "acme", "--to",
                                 str(tmp_path / "acme.tar"), "--data-dir", str(daemon.data_dir)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower)
        os.close(follower)
        shown = b""
        while True:          # read as it comes, so that the bar never waits for us
            try:
                chunk = os.read(leader, 65536)
            except OSError:          # EIO: the command ended and its terminal closed
                break
            if not chunk:
                break
            shown += chunk
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        os.close(leader)
    assert proc.returncode == 0 and out.startswith(b"exported acme to ")
    text = shown.decode("utf-8", "replace")
    assert "export acme" in text and "━" in text and "MiB" in text, text
