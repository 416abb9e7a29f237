"""Real WebDAV clients against the real daemon over HTTPS: cadaver, curl, lftp, and
the two network drives Linux users map (davfs2 through /dev/fuse, rclone mount).

Each client works the way its users drive it; what it did is then checked through
another client (curl), so a client that only believes it succeeded cannot pass.
Every subprocess has a timeout; every mount is unmounted in a `finally`, lazily if
a clean unmount fails. Client-side workarounds are commented where they are set.
"""
import os
import pty
import re
import select
import subprocess
import time
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

from tests.support.daemon import HOST, need
from tests.support.mounts import (MOUNT_TIMEOUT, davfs2_mount, mounted, need_fuse,
                                   run_briefly, unmount_anyway, wait_until)

CLIENT_TIMEOUT = 60     # seconds for any one client run
DAV = "{DAV:}"
LOCKINFO = ('<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
            '</D:lockscope><D:locktype><D:write/></D:locktype><D:owner>curl</D:owner>'
            '</D:lockinfo>')


def _env(home: Path, **extra) -> dict:
    """A small, predictable environment: no proxies, UTF-8 names, HOME of our own."""
    return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(home), "LC_ALL": "C.UTF-8", **extra}


def _home(daemon, user: str) -> Path:
    """A HOME with a .netrc for `user` (cadaver logs in from it; mode 600 as ftp wants)."""
    home = daemon.path("home")
    home.mkdir()
    u = daemon.users[user]
    netrc = home / ".netrc"
    netrc.write_text(f"machine {HOST}\nlogin {u.login}\npassword {u.password}\n")
    netrc.chmod(0o600)
    return home


def _put(daemon, user, path, data: bytes, *args):
    src = daemon.path("src")
    src.write_bytes(data)
    return daemon.request(user, "PUT", path, "-T", src, *args)


def _listing(daemon, user, folder, *, missing_ok=False) -> dict[str, object] | None:
    """PROPFIND Depth 1 of `folder`: {child name: size, or 'dir'}, the folder itself
    left out; None for a missing folder if `missing_ok`."""
    r = daemon.request(user, "PROPFIND", folder.rstrip("/") + "/", "-H", "Depth: 1")
    if missing_ok and r.status == 404:
        return None
    assert r.status == 207, r
    found = {}
    for resp in ET.fromstring(r.body).iter(f"{DAV}response"):
        href = unquote(resp.find(f"{DAV}href").text).rstrip("/")
        if href == folder.rstrip("/"):
            continue
        name = href.rsplit("/", 1)[-1]
        length = resp.find(f".//{DAV}getcontentlength")
        is_dir = resp.find(f".//{DAV}resourcetype/{DAV}collection") is not None
        found[name] = "dir" if is_dir else int(length.text)
    return found


# -- cadaver ----------------------------------------------------------------------

class _Pty:
    """Reads a child's terminal output until a pattern shows up, within one deadline."""

    def __init__(self, fd: int, timeout: float):
        self.fd, self.data = fd, b""
        self.deadline = time.monotonic() + timeout

    def until(self, pattern: re.Pattern) -> None:
        start = len(self.data)
        while not pattern.search(self.data, start):
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {pattern.pattern!r} in:\n{self.text}")
            if select.select([self.fd], [], [], left)[0]:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:         # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise EOFError(f"client exited before {pattern.pattern!r}:\n{self.text}")
                self.data += chunk

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace").replace("\r\n", "\n")


CERT_QUESTION = re.compile(rb"\(y/n\) ?$")
CADAVER_PROMPT = re.compile(rb"dav:[^\n]*> $")


def cadaver(daemon, user: str, steps, *, cwd: Path) -> str:
    """Run cadaver as `user` on the root URL and return its transcript.

    `steps` are cadaver commands, each sent after the prompt, or callables run at
    that point (to look at the server from outside while cadaver holds its state).
    cadaver refuses an untrusted certificate without asking when its input is not
    a terminal, and has no option to trust one: it runs on a pseudo-terminal and
    answers the certificate question with 'y', as a user would.
    """
    need("cadaver")
    master, slave = pty.openpty()
    proc = subprocess.Popen(["cadaver", daemon.url("/")], stdin=slave, stdout=slave,
                            stderr=slave, cwd=cwd, start_new_session=True,
                            env=_env(_home(daemon, user), TERM="dumb"))
    os.close(slave)
    term = _Pty(master, CLIENT_TIMEOUT)
    try:
        term.until(CERT_QUESTION)
        os.write(master, b"y\n")
        for step in [*steps, "quit"]:
            term.until(CADAVER_PROMPT)
            if callable(step):
                step()
                os.write(master, b"\n")     # an empty line: a fresh prompt to wait for
            else:
                os.write(master, step.encode() + b"\n")
        proc.wait(max(1.0, term.deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(master)
    return term.text


def test_cadaver_session(daemon):
    work = daemon.path("cadaver")
    work.mkdir()
    (work / "report.txt").write_bytes(b"cadaver upload\n")
    big = os.urandom(300_000)
    (work / "big.bin").write_bytes(big)
    locked = []

    def put_without_token_is_locked():
        locked.append(_put(daemon, "alice", "/cad/moved.txt", b"intruder").status)

    out = cadaver(daemon, "alice", [
        "mkcol cad", "cd cad", "put report.txt", 'put big.bin "Groß Datei.bin"',
        "copy report.txt copy.txt", "move copy.txt moved.txt",
        "lock moved.txt", put_without_token_is_locked,
        "put report.txt moved.txt",             # cadaver sends its own lock token
        "unlock moved.txt",
        "propset report.txt colour teal", "propget report.txt colour",
        'get "Groß Datei.bin" down.bin', "cat report.txt", "delete report.txt",
        "mkcol empty", "rmcol empty", "ls",
    ], cwd=work)

    assert "failed" not in out.lower(), out
    assert out.count("succeeded") >= 14, out
    assert locked == [423], out
    assert "Value of colour is: teal" in out, out
    assert "cadaver upload" in out, out
    assert (work / "down.bin").read_bytes() == big
    assert _listing(daemon, "alice", "/cad") == {"moved.txt": 15, "Groß Datei.bin": len(big)}
    assert daemon.request("alice", "GET", "/cad/moved.txt").body == b"cadaver upload\n"
    assert _put(daemon, "alice", "/cad/moved.txt", b"unlocked").status == 204


# -- curl -----------------------------------------------------------------------------

def _status(daemon, method, path, *args, user="alice") -> int:
    return daemon.request(user, method, path, *args).status


def _dest(daemon, path: str) -> tuple[str, str]:
    return ("-H", f"Destination: {daemon.url(path)}")


def test_curl_session(daemon):
    """Each method a DAV client library relies on, with the status RFC 4918 gives it."""
    d = "/curl-sess"
    assert _status(daemon, "MKCOL", d) == 201
    head = daemon.curl("alice", "-X", "OPTIONS", "-i", "-o", "-", daemon.url(d + "/")).stdout
    head = head.decode()
    assert head.startswith("HTTP/1.1 200"), head
    assert re.search(r"(?im)^DAV:.*\b1\b.*\b2\b", head), head
    allow = re.search(r"(?im)^Allow:(.*)$", head).group(1)
    for method in ("PROPFIND", "PROPPATCH", "COPY", "MOVE", "DELETE", "LOCK", "UNLOCK"):
        assert method in allow, head        # not MKCOL or PUT: the folder exists
    assert _status(daemon, "MKCOL", d) == 405                   # exists
    assert _status(daemon, "MKCOL", d + "/no/parent") == 409

    doc = bytes(range(256)) * 64
    assert _put(daemon, "alice", d + "/doc.bin", doc).status == 201
    assert _put(daemon, "alice", d + "/doc.bin", doc).status == 204
    zero = daemon.request("alice", "PROPFIND", d, "-H", "Depth: 0")
    assert zero.status == 207, zero
    assert len(list(ET.fromstring(zero.body).iter(f"{DAV}response"))) == 1, zero.body
    assert _listing(daemon, "alice", d) == {"doc.bin": len(doc)}

    r = daemon.curl("alice", "-i", "-o", "-", "-H", "Range: bytes=1000-1099",
                    daemon.url(d + "/doc.bin"))
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 206"), head
    assert re.search(rb"(?im)^content-range: bytes 1000-1099/16384\r?$", head), head
    assert body == doc[1000:1100]

    # COPY: new 201, onto an existing resource 204, but 412 with Overwrite: F
    assert _status(daemon, "COPY", d + "/doc.bin", *_dest(daemon, d + "/copy.bin")) == 201
    assert _put(daemon, "alice", d + "/other.bin", b"other").status == 201
    assert _status(daemon, "COPY", d + "/other.bin", *_dest(daemon, d + "/copy.bin"),
                   "-H", "Overwrite: F") == 412
    assert daemon.request("alice", "GET", d + "/copy.bin").body == doc
    assert _status(daemon, "COPY", d + "/other.bin", *_dest(daemon, d + "/copy.bin"),
                   "-H", "Overwrite: T") == 204
    assert daemon.request("alice", "GET", d + "/copy.bin").body == b"other"

    # MOVE: the same rules, and the source is gone only after a successful move
    assert _status(daemon, "MOVE", d + "/copy.bin", *_dest(daemon, d + "/moved.bin")) == 201
    assert _status(daemon, "MOVE", d + "/doc.bin", *_dest(daemon, d + "/moved.bin"),
                   "-H", "Overwrite: F") == 412
    assert _listing(daemon, "alice", d) == {"doc.bin": len(doc), "moved.bin": 5,
                                            "other.bin": 5}
    assert _status(daemon, "MOVE", d + "/doc.bin", *_dest(daemon, d + "/moved.bin")) == 204
    assert _listing(daemon, "alice", d) == {"moved.bin": len(doc), "other.bin": 5}

    # DELETE
    assert _status(daemon, "DELETE", d + "/other.bin") == 204
    assert _status(daemon, "GET", d + "/other.bin") == 404

    # LOCK / UNLOCK: a write without the token is 423, with it succeeds
    r = daemon.request("alice", "LOCK", d + "/moved.bin", "-H", "Content-Type: application/xml",
                       "-H", "Timeout: Second-600", "--data", LOCKINFO)
    assert r.status == 200, r
    token = re.search(rb"opaquelocktoken:[^<\s]+", r.body).group().decode()
    assert _put(daemon, "alice", d + "/moved.bin", b"no token").status == 423
    assert _status(daemon, "DELETE", d + "/moved.bin") == 423
    assert _put(daemon, "alice", d + "/moved.bin", b"with token", "-H",
                f"If: (<{token}>)").status == 204
    assert _status(daemon, "UNLOCK", d + "/moved.bin", "-H", f"Lock-Token: <{token}>") == 204
    assert _put(daemon, "alice", d + "/moved.bin", b"after unlock").status == 204
    assert daemon.request("alice", "GET", d + "/moved.bin").body == b"after unlock"

    assert _status(daemon, "DELETE", d) == 204
    assert _status(daemon, "PROPFIND", d, "-H", "Depth: 0") == 404


# -- lftp -----------------------------------------------------------------------------

def lftp(daemon, user: str, commands, *, cwd: Path) -> subprocess.CompletedProcess:
    """Run lftp against the root URL as `user`; a failing command ends it non-zero."""
    need("lftp")
    u = daemon.users[user]
    script = "; ".join([
        "set ssl:verify-certificate no", "set cmd:fail-exit yes",
        "set net:max-retries 2", "set net:timeout 20",
        # lftp drops its connection after a MKCOL and by default waits 15 s or more
        # before it reconnects: a client-side pause, not the server's
        "set net:reconnect-interval-base 0",
        f'open -u "{u.login},{u.password}" {daemon.url("/")}', *commands])
    proc = subprocess.run(["lftp", "-c", script], cwd=cwd, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=CLIENT_TIMEOUT,
                          env=_env(_home(daemon, user)))
    proc.stdout, proc.stderr = (proc.stdout.decode("utf-8", "replace"),
                                proc.stderr.decode("utf-8", "replace"))
    return proc


def test_lftp_session(daemon):
    work = daemon.path("lftp")
    work.mkdir()
    (work / "up.txt").write_bytes(b"lftp upload\n")
    big = os.urandom(400_000)
    (work / "big.bin").write_bytes(big)
    # `cd lf/` with the slash: the server answers a folder URL without one directly
    # (no redirect, for Windows), so lftp could not tell `lf` is a folder and would
    # resolve later relative names against its parent.
    proc = lftp(daemon, "alice", [
        "mkdir lf", "cd lf/", "put up.txt -o 'Grüße 1.txt'", "put big.bin", "cls -1",
        "get 'Grüße 1.txt' -o got.txt", "mv 'Grüße 1.txt' renamed.txt", "rm big.bin",
        "echo ---", "cls -1", "mirror . mirrored",
    ], cwd=work)
    assert proc.returncode == 0, f"lftp exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"

    before, _, after = proc.stdout.partition("---\n")
    assert set(before.split()) == {"Grüße", "1.txt", "big.bin"}, proc.stdout
    assert after.split() == ["renamed.txt"], proc.stdout
    assert (work / "got.txt").read_bytes() == b"lftp upload\n"
    assert sorted(p.name for p in (work / "mirrored").iterdir()) == ["renamed.txt"]
    assert _listing(daemon, "alice", "/lf") == {"renamed.txt": 12}


def test_lftp_root_listing_is_only_the_tree(daemon):
    """lftp lists a folder by reading its HTML page: every link on it is an entry
    (`mirror` downloads them too). The page must link nothing but the tree."""
    assert _status(daemon, "MKCOL", "/lf-root") == 201
    work = daemon.path("lftp-root")
    work.mkdir()
    proc = lftp(daemon, "alice", ["cls -1 /"], cwd=work)
    assert proc.returncode == 0, proc.stderr
    shown = {line.strip("/") for line in proc.stdout.splitlines() if line.strip()}
    assert shown == set(_listing(daemon, "alice", "/")), proc.stdout


# -- network drives: davfs2 and rclone mount ----------------------------------------

# One workload for both drives, what a user does in a mapped folder from a shell,
# in two steps with a pause between: rclone uploads a closed file in the
# background, and a file deleted while its upload runs comes back when the upload
# ends (an rclone VFS race, not the server's doing).
DRIVE_CREATE = """
cd "$M"
mkdir "$D"
cd "$D"
cp "$SRC/big.bin" big.bin
printf 'Umsätze für März\\n' > "Übersicht März.txt"
printf 'draft\\n' > draft.txt
mkdir sub empty
printf 'temp\\n' > sub/temp.txt
printf 'gone\\n' > gone.txt
"""
DRIVE_CHANGE = """
cd "$M/$D"
mv draft.txt final.txt
printf 'v2\\n' >> final.txt
mv sub/temp.txt moved.txt
rm gone.txt
rmdir empty
cmp "$SRC/big.bin" big.bin
cat final.txt
"""
CATTED = ("Übersicht März.txt", "final.txt", "moved.txt")
DRIVE_READ = """
cd "$M/$D"
cmp "$SRC/big.bin" big.bin
ls -A | LC_ALL=C sort
echo ---
cat "Übersicht März.txt" final.txt moved.txt
"""
BIG = 3 * 1024 * 1024 + 123


def created(big: bytes) -> dict[str, object]:
    """The folder's listing after DRIVE_CREATE: name → size, or 'dir'."""
    return {"big.bin": len(big), "Übersicht März.txt": len("Umsätze für März\n".encode()),
            "draft.txt": 6, "sub": "dir", "empty": "dir", "gone.txt": 5}


def changed(big: bytes) -> dict[str, bytes | None]:
    """The folder after DRIVE_CHANGE: file → contents, folder → None."""
    return {"big.bin": big, "Übersicht März.txt": "Umsätze für März\n".encode(),
            "final.txt": b"draft\nv2\n", "moved.txt": b"temp\n", "sub": None}


def sizes(tree: dict[str, bytes | None]) -> dict[str, object]:
    return {name: "dir" if data is None else len(data) for name, data in tree.items()}


def in_mount(mountpoint: Path, folder: str, src: Path, script: str) -> str:
    """Run a workload script on `folder` of the mount, in a child with a timeout:
    a hung FUSE call blocks its caller, and that must not be pytest."""
    proc = subprocess.run(["sh", "-euc", script], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=CLIENT_TIMEOUT,
                          env=_env(src, M=str(mountpoint), D=folder, SRC=str(src)))
    out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, f"shell in the mount exited {proc.returncode}:\n{out}\n{err}"
    return out


def wait_for_server(daemon, user: str, folder: str, want: dict, what: str) -> None:
    """Until the server lists `want` in the folder: the drive's uploads have landed."""
    seen = []

    def landed() -> bool:
        seen[:] = [_listing(daemon, user, "/" + folder, missing_ok=True)]
        return seen[0] == want
    wait_until(landed, lambda: f"{what}; the server lists {seen[0]}, not {want}")


def drive_workload(daemon, user: str, mountpoint: Path, folder: str, src: Path,
                   big: bytes) -> None:
    in_mount(mountpoint, folder, src, DRIVE_CREATE)
    wait_for_server(daemon, user, folder, created(big), "the new files")
    assert in_mount(mountpoint, folder, src, DRIVE_CHANGE) == "draft\nv2\n"
    check_read_back(in_mount(mountpoint, folder, src, DRIVE_READ), big)


def check_read_back(out: str, big: bytes) -> None:
    """DRIVE_READ's output shows the tree DRIVE_CHANGE left."""
    names, _, contents = out.partition("---\n")
    assert names.splitlines() == sorted(changed(big)), out
    assert contents.encode() == b"".join(changed(big)[name] for name in CATTED), out


def check_on_server(daemon, user: str, folder: str, big: bytes) -> None:
    """Through curl, not the drive: the folder holds exactly what DRIVE_CHANGE left."""
    assert _listing(daemon, user, "/" + folder) == sizes(changed(big))
    for name, data in changed(big).items():
        if data is not None:
            assert daemon.request(user, "GET", f"/{folder}/{name}").body == data, name
    assert _listing(daemon, user, f"/{folder}/sub") == {}


def source_files(daemon) -> tuple[Path, bytes]:
    src = daemon.path("drive-src")
    src.mkdir()
    big = os.urandom(BIG)
    (src / "big.bin").write_bytes(big)
    return src, big


def test_davfs2_mount_write_read_rename_delete_and_remount(daemon, davfs2_shared):
    src, big = source_files(daemon)
    mnt = daemon.path("davfs2-mnt")

    with davfs2_mount(daemon, "alice", mnt, *davfs2_shared, cache="cache-1"):
        drive_workload(daemon, "alice", mnt, "davfs2", src, big)
    check_on_server(daemon, "alice", "davfs2", big)

    with davfs2_mount(daemon, "alice", mnt, *davfs2_shared, cache="cache-2"):  # empty cache
        check_read_back(in_mount(mnt, "davfs2", src, DRIVE_READ), big)


@contextmanager
def rclone_mount(daemon, user: str, mountpoint: Path):
    """`rclone mount` of the user's WebDAV root, VFS cache mode writes, in the background."""
    need("rclone", "fusermount")
    need_fuse()
    u = daemon.users[user]
    obscured = run_briefly(["rclone", "obscure", u.password], check=True).stdout.decode().strip()
    conf = daemon.path("rclone-mount.conf")
    conf.write_text(f"[drive]\ntype = webdav\nurl = {daemon.url('/')}\nvendor = other\n"
                    f"user = {u.login}\npass = {obscured}\n")
    conf.chmod(0o600)
    mountpoint.mkdir()
    log = daemon.path("rclone-mount.log")
    proc = subprocess.Popen(
        ["rclone", "--config", str(conf), "--no-check-certificate", "mount", "drive:",
         str(mountpoint), "--vfs-cache-mode", "writes", "--vfs-write-back", "0s",
         "--cache-dir", str(daemon.path("rclone-cache")), "--dir-cache-time", "1s",
         "--contimeout", "10s", "--timeout", "30s", "--log-file", str(log), "-v"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        wait_until(lambda: mounted(mountpoint) or proc.poll() is not None, "rclone mount")
        assert mounted(mountpoint), f"rclone exited {proc.returncode}:\n{log.read_text()}"
        yield mountpoint
        umount = run_briefly(["fusermount", "-u", str(mountpoint)])
        assert umount.returncode == 0, umount.stderr
        proc.wait(MOUNT_TIMEOUT)
    finally:
        unmount_anyway(mountpoint, ["fusermount", "-u"], ["fusermount", "-uz"])
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def test_rclone_mount_write_read_rename_delete(daemon):
    src, big = source_files(daemon)
    mnt = daemon.path("rclone-mnt")

    with rclone_mount(daemon, "alice", mnt):
        drive_workload(daemon, "alice", mnt, "rclone", src, big)
        # rclone does not wait for pending uploads when unmounted
        wait_for_server(daemon, "alice", "rclone", sizes(changed(big)), "the changes")
    check_on_server(daemon, "alice", "rclone", big)
