"""OpenSSH sftp against the real daemon: upload, list, download, rename, delete.

Every change is verified by what the client sees afterwards (a listing or a
second download), never by looking inside the server.
"""
import hashlib
import os

import pytest

from tests.support.daemon import sftp_lines, sftp_quote as q

BIG = 20 * 1024 * 1024
TREE = {                      # relative path -> content
    "Übersicht März.txt": "Umsätze für März\n".encode(),
    "a b/c d.txt": b"spaces in folder and file name\n",
    "a b/tief/ß€ 😀.bin": os.urandom(70_000),
    "readme.txt": b"",
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ok(proc):
    assert proc.returncode == 0, (f"sftp exited {proc.returncode}\nstdout:\n"
                                  f"{proc.stdout.decode('utf-8', 'replace')}\nstderr:\n"
                                  f"{proc.stderr.decode('utf-8', 'replace')}")
    return proc


def listing(daemon, user, remote_dir) -> set[str]:
    """Names in `remote_dir` as `ls -1` shows them."""
    lines = sftp_lines(ok(daemon.run_sftp(user, [f"ls -1 {q(remote_dir)}"])))
    prefix = remote_dir.rstrip("/") + "/"
    return {line[len(prefix):] if line.startswith(prefix) else line for line in lines}


@pytest.fixture
def local_tree(daemon):
    """A local folder holding TREE plus a 20 MiB random file."""
    root = daemon.path("tree")
    for rel, data in TREE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    with open(root / "big.bin", "wb") as f:
        for _ in range(BIG // (1 << 20)):
            f.write(os.urandom(1 << 20))
    return root


def all_files(root):
    return {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file()}


def test_upload_list_download_tree(daemon, local_tree):
    remote = "/sftp-roundtrip"
    ok(daemon.run_sftp("alice", [f"put -r {q(local_tree)} {q(remote)}"]))

    assert listing(daemon, "alice", remote) == {"Übersicht März.txt", "a b", "big.bin",
                                                "readme.txt"}
    assert listing(daemon, "alice", f"{remote}/a b") == {"c d.txt", "tief"}
    assert listing(daemon, "alice", f"{remote}/a b/tief") == {"ß€ 😀.bin"}
    long = sftp_lines(ok(daemon.run_sftp("alice", [f"ls -l {q(remote + '/big.bin')}"])))
    assert str(BIG) in long[0].split()

    down = daemon.path("down")
    ok(daemon.run_sftp("alice", [f"get -r {q(remote)} {q(down)}"]))
    expected = all_files(local_tree)
    got = all_files(down)
    assert sorted(got) == sorted(expected)
    for rel, path in expected.items():
        assert sha_file(got[rel]) == sha_file(path), rel


def test_single_get_of_big_file_matches(daemon, local_tree):
    remote = "/sftp-big.bin"
    ok(daemon.run_sftp("alice", [f"put {q(local_tree / 'big.bin')} {q(remote)}"]))
    down = daemon.path("big.bin")
    ok(daemon.run_sftp("alice", [f"get {q(remote)} {q(down)}"]))
    assert down.stat().st_size == BIG
    assert sha_file(down) == sha_file(local_tree / "big.bin")


def test_rename_file_and_folder(daemon):
    data = os.urandom(300_000)
    src = daemon.path("Übersicht März.txt")
    src.write_bytes(data)
    ok(daemon.run_sftp("alice", ["mkdir /sftp-ren", "mkdir '/sftp-ren/a b'",
                                 f"put {q(src)} {q('/sftp-ren/a b/Übersicht März.txt')}"]))

    ok(daemon.run_sftp("alice", [
        f"rename {q('/sftp-ren/a b/Übersicht März.txt')} {q('/sftp-ren/a b/c d.txt')}",
        f"rename {q('/sftp-ren/a b')} {q('/sftp-ren/x y')}"]))

    assert listing(daemon, "alice", "/sftp-ren") == {"x y"}
    assert listing(daemon, "alice", "/sftp-ren/x y") == {"c d.txt"}
    down = daemon.path("renamed")
    ok(daemon.run_sftp("alice", [f"get {q('/sftp-ren/x y/c d.txt')} {q(down)}"]))
    assert sha(down.read_bytes()) == sha(data)
    old = daemon.run_sftp("alice", [f"get {q('/sftp-ren/a b/Übersicht März.txt')} "
                                    f"{q(daemon.path('old'))}"])
    assert old.returncode != 0


def test_rename_onto_existing_file_replaces_it(daemon):
    """OpenSSH's `rename` uses posix-rename@openssh.com (the server offers it): it replaces."""
    a, b = daemon.path("a"), daemon.path("b")
    a.write_bytes(b"first")
    b.write_bytes(b"second")
    ok(daemon.run_sftp("alice", [f"put {q(a)} /sftp-over-a", f"put {q(b)} /sftp-over-b",
                                 "rename /sftp-over-a /sftp-over-b"]))
    down = daemon.path("over")
    ok(daemon.run_sftp("alice", [f"get /sftp-over-b {q(down)}"]))
    assert down.read_bytes() == b"first"
    assert "sftp-over-a" not in listing(daemon, "alice", "/")


def test_delete_file_and_folder(daemon):
    f = daemon.path("f")
    f.write_bytes(b"to be deleted\n")
    ok(daemon.run_sftp("alice", ["mkdir /sftp-del", "mkdir '/sftp-del/a b'",
                                 f"put {q(f)} {q('/sftp-del/a b/Übersicht März.txt')}",
                                 f"put {q(f)} /sftp-del/keep.txt"]))

    ok(daemon.run_sftp("alice", [f"rm {q('/sftp-del/a b/Übersicht März.txt')}"]))
    assert listing(daemon, "alice", "/sftp-del/a b") == set()
    gone = daemon.run_sftp("alice", [f"get {q('/sftp-del/a b/Übersicht März.txt')} "
                                     f"{q(daemon.path('gone'))}"])
    assert gone.returncode != 0

    ok(daemon.run_sftp("alice", [f"rmdir {q('/sftp-del/a b')}"]))
    assert listing(daemon, "alice", "/sftp-del") == {"keep.txt"}


def test_rmdir_of_non_empty_folder_fails_and_keeps_it(daemon):
    f = daemon.path("f")
    f.write_bytes(b"content\n")
    ok(daemon.run_sftp("alice", ["mkdir /sftp-full", f"put {q(f)} /sftp-full/x.txt"]))
    assert daemon.run_sftp("alice", ["rmdir /sftp-full"]).returncode != 0
    assert listing(daemon, "alice", "/sftp-full") == {"x.txt"}
