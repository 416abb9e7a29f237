"""The fault-injection level's tools (tests/faults): clients that record what the daemon
acknowledged, and the invariants checked after every scenario.

Clients are real protocol clients in threads: `requests` for WebDAV (Basic login of a
user without TOTP) and paramiko's SFTP client. Every request has a 30 s timeout: a
request that hangs fails the scenario ("every request answers within 30 s"). The
`Ledger` keeps the SHA-256 of each upload the daemon said it stored, by path, so the
checks can ask: is every acknowledged upload still readable, byte-exact, as the
current version or one of the file's versions (`@versions`)?
"""
import hashlib
import json
import os
import random
import threading
from collections import defaultdict
from urllib.parse import quote

import paramiko
import requests
import urllib3

from tests.support.daemon import HOST

urllib3.disable_warnings()
TIMEOUT = 30          # seconds: every request must have its answer by then


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload(size: int, tag: str) -> bytes:
    """`size` bytes that no other payload of the run shares (random, with `tag` in front)."""
    head = f"{tag}|".encode()
    return head + random.randbytes(max(0, size - len(head)))


class Ledger:
    """What the daemon acknowledged, per path, in order; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acked: dict[str, list[str]] = defaultdict(list)
        self.known: set[str] = set()      # every payload sent, acknowledged or not

    def sent(self, data: bytes) -> None:
        with self._lock:
            self.known.add(sha(data))

    def ack(self, path: str, data: bytes) -> None:
        with self._lock:
            self.acked[path].append(sha(data))


class Dav:
    """A WebDAV client of `user` (requests, one keep-alive connection)."""

    def __init__(self, daemon, user) -> None:
        self.base = daemon.base_url
        self.s = requests.Session()
        self.s.verify, self.s.trust_env = False, False
        self.s.auth = (user.login, user.password)

    def url(self, path: str) -> str:
        return self.base + quote(path)

    def put(self, path: str, data: bytes) -> int:
        return self.s.put(self.url(path), data=data, timeout=TIMEOUT).status_code

    def get(self, path: str) -> requests.Response:
        return self.s.get(self.url(path), timeout=TIMEOUT)

    def move(self, src: str, dst: str, overwrite: bool = True) -> int:
        return self.s.request("MOVE", self.url(src), timeout=TIMEOUT, headers={
            "Destination": self.url(dst), "Overwrite": "T" if overwrite else "F"}).status_code

    def delete(self, path: str) -> int:
        return self.s.delete(self.url(path), timeout=TIMEOUT).status_code

    def mkcol(self, path: str) -> int:
        return self.s.request("MKCOL", self.url(path), timeout=TIMEOUT).status_code

    def children(self, path: str) -> list[str]:
        """Names in a folder (PROPFIND Depth 1), or [] if it is not there."""
        r = self.s.request("PROPFIND", self.url(path.rstrip("/") + "/"), timeout=TIMEOUT,
                           headers={"Depth": "1"})
        if r.status_code != 207:
            return []
        import re
        from urllib.parse import unquote
        hrefs = [unquote(h) for h in re.findall(r"<(?:\w+:)?href>([^<]+)</", r.text)]
        own = path.rstrip("/") + "/"
        return [h.rstrip("/").rsplit("/", 1)[-1] for h in hrefs
                if h.rstrip("/") != own.rstrip("/")]


class Sftp:
    """An SFTP client of `user` (paramiko, password login, one connection)."""

    def __init__(self, daemon, user) -> None:
        self.transport = paramiko.Transport((HOST, daemon.sftp_port))
        self.transport.banner_timeout = self.transport.auth_timeout = TIMEOUT
        self.transport.connect(username=user.login, password=user.password)
        self.sftp = paramiko.SFTPClient.from_transport(self.transport)
        self.sftp.get_channel().settimeout(TIMEOUT)

    def put(self, path: str, data: bytes) -> None:
        with self.sftp.open(path, "wb") as f:
            f.set_pipelined(True)
            f.write(data)

    def get(self, path: str) -> bytes:
        with self.sftp.open(path, "rb") as f:
            return f.read()

    def close(self) -> None:
        self.transport.close()


def all_versions(dav: Dav, path: str) -> set[str]:
    """SHA-256 of the current content and of every version of file `path` (@versions)."""
    out = set()
    r = dav.get(path)
    if r.status_code == 200:
        out.add(sha(r.content))
    folder = "/@versions" + path
    for name in dav.children(folder):
        r = dav.get(f"{folder}/{name}")
        if r.status_code == 200:
            out.add(sha(r.content))
    return out


def check_acknowledged(dav: Dav, ledger: Ledger, where: dict[str, list[str]] | None = None) -> None:
    """Every acknowledged upload reads back byte-exact from the file it went to (or, with
    `where`, from any of the paths listed for it: a file that may have been renamed)."""
    missing = []
    cache: dict[str, set[str]] = {}
    for path, digests in ledger.acked.items():
        found: set[str] = set()
        for candidate in (where or {}).get(path, [path]):
            if candidate not in cache:
                cache[candidate] = all_versions(dav, candidate)
            found |= cache[candidate]
        missing += [f"{path}: {d[:12]}" for d in digests if d not in found]
    assert not missing, f"acknowledged uploads not readable: {missing[:10]} ({len(missing)})"


def healthy(daemon) -> None:
    """`doctor` finds nothing (no stray, missing or staged blob) and `audit verify` passes."""
    doctor = daemon.cli("doctor", "--json")
    assert doctor.returncode == 0, f"doctor: {doctor.stdout[-2000:]} {doctor.stderr[-500:]}"
    audit = daemon.cli("audit", "verify")
    assert audit.returncode == 0, f"audit verify: {audit.stdout[-500:]} {audit.stderr[-500:]}"


def no_errors_logged(daemon) -> None:
    """No 500, no traceback, no internal error in what the daemon logged since it started."""
    text = daemon.log_since_start()
    bad = [line for line in text.splitlines()
           if "Traceback" in line or " 500 " in line or "internal error" in line.lower()]
    assert not bad, "\n".join(bad[:10])


def process_usage(pid: int) -> tuple[int, int]:
    """(open descriptors, resident KiB) of a process."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return fds, rss


def versions_json(daemon, path: str) -> list[dict]:
    out = daemon.cli("versions", "list", path, "--json", check=True).stdout
    return json.loads(out)
