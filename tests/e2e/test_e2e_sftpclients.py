"""Real SFTP clients other than OpenSSH's batch basics against the real daemon.

PuTTY psftp (FileZilla's engine descends from it), lftp, rclone's sftp backend
and an sshfs mount each upload, list, download, rename and delete; OpenSSH sftp
resumes uploads and downloads, shows parseable `ls -l` longnames and runs 20
sessions at once. Every change is verified by what a client sees afterwards
(a listing, a second download, sha256), never by looking inside the server.
Each client runs with HOME in the test's directory and no known_hosts file,
so nothing outside it is touched.
"""
import calendar
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager

import pytest

from tests.support.clients import CLIENT_TIMEOUT, host_fingerprint, ok, run
from tests.support.daemon import HOST, need, sftp_lines, sftp_quote as q

BIG = 20 * 1024 * 1024
SMALL = {                  # relative path -> content: odd names, nested folders
    "a b.txt": b"spaces in the name\n",
    "Übersicht März.txt": "Umsätze für März\n".encode(),
    "ß€ 😀/tief drin.bin": os.urandom(70_000),
    "leer.txt": b"",
}
MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
# How FileZilla and WinSCP read a Unix `ls -l` line: type+permissions, link count,
# owner, group, size, month, day, time or year, name (the rest of the line).
LONGNAME = re.compile(rf"^(?P<type>[-dl])(?P<perms>[-rwxsStT]{{9}})\s+(?P<links>\d+)\s+"
                      rf"(?P<owner>\S+)\s+(?P<group>\S+)\s+(?P<size>\d+)\s+"
                      rf"(?P<month>{MONTHS})\s+(?P<day>\d{{1,2}})\s+"
                      rf"(?P<when>\d{{1,2}}:\d{{2}}|\d{{4}})\s(?P<name>.+)$")


# -- helpers ------------------------------------------------------------------------

def sha_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shas(root) -> dict[str, str]:
    """relative path -> sha256 of every file under `root`."""
    return {str(p.relative_to(root)): sha_file(p) for p in root.rglob("*") if p.is_file()}


def sftp_listing(daemon, remote_dir) -> set[str]:
    """Names in `remote_dir` as OpenSSH sftp's `ls -1` shows them (the server's truth)."""
    lines = sftp_lines(ok(daemon.run_sftp("alice", [f"ls -1 {q(remote_dir)}"])))
    prefix = remote_dir.rstrip("/") + "/"
    return {line[len(prefix):] if line.startswith(prefix) else line for line in lines}


def sftp_get_sha(daemon, remote) -> str:
    down = daemon.path("check")
    ok(daemon.run_sftp("alice", [f"get {q(remote)} {q(down)}"]))
    return sha_file(down)


def client_env(daemon, **extra) -> dict:
    home = daemon.root / "client-home"
    home.mkdir(exist_ok=True)
    return dict(os.environ, HOME=str(home), LC_ALL="C.UTF-8", **extra)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big 20 MiB.bin"
    with open(path, "wb") as f:
        for _ in range(BIG // (1 << 20)):
            f.write(os.urandom(1 << 20))
    return path


@pytest.fixture
def small_tree(daemon):
    root = daemon.path("small")
    for rel, data in SMALL.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


# -- PuTTY psftp ----------------------------------------------------------------------

def psftp(daemon, lines, cwd):
    """psftp in batch mode as alice, the host key pinned; stops at the first error."""
    need("psftp")
    script, pwfile = daemon.path("psftp.txt"), daemon.path("pw")
    script.write_text("".join(line + "\n" for line in lines), "utf-8")
    pwfile.write_text(daemon.users["alice"].password)
    return run(["psftp", "-batch", "-P", str(daemon.sftp_port), "-pwfile", str(pwfile),
                "-hostkey", host_fingerprint(daemon), "-b", str(script), f"alice@{HOST}"],
               cwd=cwd, env=client_env(daemon))


def test_psftp_upload_list_download_rename_delete(daemon, big_file):
    flat = {name: data for name, data in SMALL.items() if "/" not in name}
    local = daemon.path("psftp-up")
    local.mkdir()
    shutil.copyfile(big_file, local / "big.bin")
    for name, data in flat.items():
        (local / name).write_bytes(data)
    names = ["big.bin", *flat]

    proc = ok(psftp(daemon, ["mkdir /psftp", "cd /psftp", "mkdir \"dir a\"",
                             *(f"put {q(n)}" for n in names),
                             f"put {q('a b.txt')} {q('dir a/inner ü.txt')}", "ls"], local))
    listed = [line for line in proc.stdout.splitlines() if line[:1] in "-d"]
    for name in [*names, "dir a"]:
        assert any(line.endswith(" " + name) for line in listed), (name, listed)
    assert any(line.endswith(" big.bin") and f" {BIG} " in line for line in listed), listed

    down = daemon.path("psftp-down")
    down.mkdir()
    ok(psftp(daemon, ["cd /psftp", *(f"get {q(n)}" for n in names)], down))
    assert {n: sha_file(down / n) for n in names} == {n: sha_file(local / n) for n in names}

    ok(psftp(daemon, ["cd /psftp", f"mv {q('Übersicht März.txt')} {q('April ä.txt')}",
                      f"mv {q('dir a')} {q('dir b')}"], local))
    assert sftp_listing(daemon, "/psftp") == {"big.bin", "a b.txt", "April ä.txt", "leer.txt",
                                              "dir b"}
    assert sftp_listing(daemon, "/psftp/dir b") == {"inner ü.txt"}
    assert sftp_get_sha(daemon, "/psftp/April ä.txt") == sha_file(local / "Übersicht März.txt")

    ok(psftp(daemon, ["cd /psftp", "rm big.bin", f"rm {q('dir b/inner ü.txt')}",
                      f"rmdir {q('dir b')}"], local))
    assert sftp_listing(daemon, "/psftp") == {"a b.txt", "April ä.txt", "leer.txt"}


# -- lftp -----------------------------------------------------------------------------

def lftp(daemon, commands: str):
    """lftp over sftp:// as alice; the first failing command ends it with an error."""
    need("lftp", "ssh")
    ssh = ("ssh -a -x -F /dev/null -oStrictHostKeyChecking=no -oUserKnownHostsFile=/dev/null "
           "-oPubkeyAuthentication=no -oLogLevel=ERROR -oConnectTimeout=10")
    script = (f'set cmd:fail-exit yes; set sftp:auto-confirm yes; set net:max-retries 1; '
              f'set net:timeout 20; set sftp:connect-program "{ssh}"; '
              f'open --env-password -u alice sftp://{HOST}:{daemon.sftp_port}; {commands}')
    return run(["lftp", "-c", script], cwd=daemon.work,
               env=client_env(daemon, LFTP_PASSWORD=daemon.users["alice"].password))


def test_lftp_put_ls_get_mv_rm(daemon, big_file):
    down = daemon.path("lftp big.bin")
    proc = ok(lftp(daemon, f"mkdir /lftp; cd /lftp; put {q(big_file)} -o big.bin; "
                           f"cls -l; get big.bin -o {q(down)}; mv big.bin 'groß.bin'; cls -1"))
    assert sha_file(down) == sha_file(big_file)
    assert re.search(rf"\s{BIG}\s.*big\.bin$", proc.stdout, re.M), proc.stdout
    assert proc.stdout.splitlines()[-1] == "groß.bin"
    assert sftp_listing(daemon, "/lftp") == {"groß.bin"}

    ok(lftp(daemon, "cd /lftp; rm groß.bin"))
    assert sftp_listing(daemon, "/lftp") == set()


def test_lftp_mirror_tree_up_and_back(daemon, small_tree):
    back = daemon.path("lftp-back")
    ok(lftp(daemon, f"mirror -R {q(small_tree)} /lftp-tree; mirror /lftp-tree {q(back)}"))
    assert shas(back) == shas(small_tree)
    assert sftp_listing(daemon, "/lftp-tree") == {"a b.txt", "Übersicht März.txt", "ß€ 😀",
                                                  "leer.txt"}


# -- rclone's sftp backend ------------------------------------------------------------

def rclone_sftp(daemon, *args, probe=False, timeout=CLIENT_TIMEOUT):
    """rclone with an sftp remote `s:` for alice; `probe` lets rclone run its exec probes."""
    need("rclone")
    conf = daemon.path("rclone-sftp.conf")
    obscured = ok(run(["rclone", "obscure", daemon.users["alice"].password])).stdout.strip()
    lines = ["[s]", "type = sftp", f"host = {HOST}", f"port = {daemon.sftp_port}",
             "user = alice", f"pass = {obscured}",
             *(() if probe else ("shell_type = none", "disable_hashcheck = true"))]
    conf.write_text("\n".join(lines) + "\n")
    return run(["rclone", "--config", str(conf), "--retries", "1", "--low-level-retries", "1",
                "--contimeout", "10s", "--timeout", "30s", *map(str, args)],
               cwd=daemon.work, env=client_env(daemon), timeout=timeout)


def test_rclone_copy_check_moveto_delete_purge(daemon, big_file, small_tree):
    shutil.copyfile(big_file, small_tree / "big.bin")
    ok(rclone_sftp(daemon, "copy", small_tree, "s:/rclone"))
    check = ok(rclone_sftp(daemon, "check", "--download", small_tree, "s:/rclone"))
    assert "0 differences found" in check.stderr, check.stderr

    ok(rclone_sftp(daemon, "moveto", "s:/rclone/a b.txt", "s:/rclone/c d.txt"))
    ok(rclone_sftp(daemon, "moveto", "s:/rclone/ß€ 😀", "s:/rclone/neu ö"))
    listed = ok(rclone_sftp(daemon, "lsf", "-R", "s:/rclone")).stdout.splitlines()
    assert sorted(listed) == sorted(["Übersicht März.txt", "big.bin", "c d.txt", "leer.txt",
                                     "neu ö/", "neu ö/tief drin.bin"])
    assert sftp_get_sha(daemon, "/rclone/neu ö/tief drin.bin") == \
        sha_file(small_tree / "ß€ 😀/tief drin.bin")

    ok(rclone_sftp(daemon, "delete", "s:/rclone"))
    assert sftp_listing(daemon, "/rclone") == {"neu ö"}   # delete keeps folders
    ok(rclone_sftp(daemon, "purge", "s:/rclone"))
    assert "rclone" not in sftp_listing(daemon, "/")


def test_rclone_exec_probes_are_refused_without_hanging(daemon, small_tree):
    """Without shell_type=none rclone runs `echo`, `md5sum`, `sha1sum` over exec."""
    started = time.monotonic()
    ok(rclone_sftp(daemon, "copy", small_tree, "s:/rclone-probe", probe=True, timeout=45))
    ok(rclone_sftp(daemon, "check", "--download", small_tree, "s:/rclone-probe", probe=True,
                   timeout=45))
    assert time.monotonic() - started < 45
    assert re.search(r"refused.*md5sum", daemon.log_text()), "no md5sum probe was refused"


# -- sshfs ----------------------------------------------------------------------------

@contextmanager
def sshfs_mount(daemon):
    need("sshfs", "fusermount")
    mnt = daemon.path("mnt")
    mnt.mkdir()
    ok(run(["sshfs", "-p", str(daemon.sftp_port), "-F", "/dev/null", "-o",
            "password_stdin,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,"
            "PubkeyAuthentication=no,ConnectTimeout=10", f"alice@{HOST}:/", str(mnt)],
           input=(daemon.users["alice"].password + "\n").encode(), env=client_env(daemon),
           timeout=30))
    try:
        yield mnt
    finally:
        if subprocess.run(["fusermount", "-u", str(mnt)], capture_output=True,
                          timeout=30).returncode != 0:
            subprocess.run(["fusermount", "-uz", str(mnt)], capture_output=True, timeout=30)


def sh(*argv):
    """A shell command on the mount, bounded in time (a stuck FUSE call fails the test)."""
    return ok(run([str(a) for a in argv]))


def test_sshfs_folders_and_existing_files(daemon, small_tree):
    ok(daemon.run_sftp("alice", [f"put -r {q(small_tree)} /sshfs-old"]))
    with sshfs_mount(daemon) as mnt:
        long = sh("ls", "-l", mnt / "sshfs-old").stdout
        assert re.search(r"^-.*\s19\s.*\sa b\.txt$", long, re.M), long
        assert re.search(r"^d.*\sß€ 😀$", long, re.M), long
        assert sh("sha256sum", mnt / "sshfs-old/ß€ 😀/tief drin.bin").stdout.split()[0] == \
            sha_file(small_tree / "ß€ 😀/tief drin.bin")
        sh("mkdir", mnt / "sshfs-old/neu ordner")
        assert "neu ordner" in sftp_listing(daemon, "/sshfs-old")
        sh("rmdir", mnt / "sshfs-old/neu ordner")
        sh("mv", mnt / "sshfs-old/a b.txt", mnt / "sshfs-old/ä b.txt")
        sh("mv", mnt / "sshfs-old/ß€ 😀", mnt / "sshfs-old/umbenannt")
        sh("rm", mnt / "sshfs-old/leer.txt")
        assert sftp_listing(daemon, "/sshfs-old") == {"Übersicht März.txt", "ä b.txt",
                                                      "umbenannt"}
        assert sftp_get_sha(daemon, "/sshfs-old/umbenannt/tief drin.bin") == \
            sha_file(small_tree / "ß€ 😀/tief drin.bin")


def test_sshfs_copy_in_read_back_rename_delete(daemon, big_file):
    """A plain `cp` onto the mount: create, sequential writes, close."""
    with sshfs_mount(daemon) as mnt:
        sh("mkdir", mnt / "sshfs-new")
        sh("cp", big_file, mnt / "sshfs-new/big.bin")
        assert sh("sha256sum", mnt / "sshfs-new/big.bin").stdout.split()[0] == \
            sha_file(big_file)
        assert sftp_get_sha(daemon, "/sshfs-new/big.bin") == sha_file(big_file)
        long = sh("ls", "-l", mnt / "sshfs-new").stdout
        assert re.search(rf"\s{BIG}\s.*\sbig\.bin$", long, re.M), long
        sh("mv", mnt / "sshfs-new/big.bin", mnt / "sshfs-new/groß 1.bin")
        assert sftp_listing(daemon, "/sshfs-new") == {"groß 1.bin"}
        sh("rm", mnt / "sshfs-new/groß 1.bin")
        sh("rmdir", mnt / "sshfs-new")
        assert "sshfs-new" not in sftp_listing(daemon, "/")


# -- OpenSSH sftp: resume, longnames, concurrency ---------------------------------------

def test_reput_completes_an_interrupted_upload_and_keeps_the_partial_version(daemon):
    data = os.urandom(6 * 1024 * 1024 + 123)
    full, half = daemon.path("full.bin"), daemon.path("half.bin")
    full.write_bytes(data)
    half.write_bytes(data[:len(data) // 2])
    ok(daemon.run_sftp("alice", ["mkdir /resume", f"put {q(half)} /resume/f.bin"]))
    ok(daemon.run_sftp("alice", [f"reput {q(full)} /resume/f.bin"]))

    assert sftp_get_sha(daemon, "/resume/f.bin") == sha_file(full)
    versions = json.loads(daemon.cli("versions", "list", "/acme/resume/f.bin", "--json",
                                     check=True).stdout)
    by_size = {v["size"]: v for v in versions}
    assert set(by_size) == {len(data) // 2, len(data)}
    assert by_size[len(data)]["current"] and not by_size[len(data) // 2]["current"]
    # the partial version is the half that was sent (digests are keyed: read it back)
    names = sftp_lines(ok(daemon.run_sftp("alice", ["ls -1 /@versions/resume/f.bin"])))
    (name,) = [n.rsplit("/", 1)[-1] for n in names
               if f" v{by_size[len(data) // 2]['id']} " in n]
    half_back = daemon.path("half-back.bin")
    ok(daemon.run_sftp("alice", [f"get {q('/@versions/resume/f.bin/' + name)} {q(half_back)}"]))
    assert sha_file(half_back) == sha_file(half)


def test_reget_completes_a_partial_download(daemon):
    data = os.urandom(5 * 1024 * 1024 + 7)
    src, part = daemon.path("src.bin"), daemon.path("part.bin")
    src.write_bytes(data)
    part.write_bytes(data[:2 * 1024 * 1024 + 3])
    ok(daemon.run_sftp("alice", [f"put {q(src)} /reget.bin"]))
    ok(daemon.run_sftp("alice", [f"reget /reget.bin {q(part)}"]))
    assert sha_file(part) == sha_file(src)


def test_ls_l_longnames_parse_like_filezilla_and_winscp(daemon):
    """OpenSSH sftp prints the server's longnames for `ls -l DIR` unchanged."""
    recent, old = daemon.path("recent"), daemon.path("old")
    recent.write_bytes(os.urandom(123_457))
    old.write_bytes(b"x" * 42)
    old_mtime = calendar.timegm((2020, 6, 15, 12, 0, 0))
    os.utime(old, (old_mtime, old_mtime))
    ok(daemon.run_sftp("alice", ["mkdir /longnames", "mkdir '/longnames/sub dir'",
                                 f"put {q(recent)} {q('/longnames/neu ü.bin')}",
                                 f"put -p {q(old)} /longnames/old.txt"]))
    lines = sftp_lines(ok(daemon.run_sftp("alice", ["ls -l /longnames"])))
    parsed = {}
    for line in lines:
        m = LONGNAME.match(line)
        assert m, f"not an ls -l line: {line!r}"
        parsed[m["name"]] = m
    assert set(parsed) == {"neu ü.bin", "old.txt", "sub dir"}
    assert parsed["sub dir"]["type"] == "d" and parsed["old.txt"]["type"] == "-"
    assert int(parsed["neu ü.bin"]["size"]) == 123_457 and int(parsed["old.txt"]["size"]) == 42
    assert re.fullmatch(r"\d{1,2}:\d{2}", parsed["neu ü.bin"]["when"])
    local = time.localtime(old_mtime)
    assert (parsed["old.txt"]["month"], int(parsed["old.txt"]["day"]),
            parsed["old.txt"]["when"]) == (MONTHS.split("|")[local.tm_mon - 1],
                                           local.tm_mday, "2020")


def test_twenty_concurrent_sessions_upload_and_download(daemon):
    n = 20
    files = []
    for i in range(n):
        src = daemon.path(f"conc-{i}.bin")
        src.write_bytes(os.urandom((1 << 20) + i * 50_000))
        files.append((src, daemon.path(f"conc-{i}.back"), f"/concurrent/f {i:02d}.bin"))
    ok(daemon.run_sftp("alice", ["mkdir /concurrent"]))

    started = time.monotonic()
    procs = [daemon.sftp_background("alice", [f"put {q(src)} {q(remote)}",
                                              f"get {q(remote)} {q(back)}"])
             for src, back, remote in files]
    deadline = started + 60
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in procs:
                if other.poll() is None:
                    os.killpg(other.pid, signal.SIGKILL)
            pytest.fail(f"{n} concurrent sessions did not finish within 60 s")
        assert p.returncode == 0, err.decode("utf-8", "replace")
    assert time.monotonic() - started < 60

    for src, back, remote in files:
        assert sha_file(back) == sha_file(src), remote
    assert sftp_listing(daemon, "/concurrent") == {f"f {i:02d}.bin" for i in range(n)}
