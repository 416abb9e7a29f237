"""kill -9 at random moments of an upload workload leaves nothing behind (issue 18).

Two WebDAV writers (requests) and an SFTP writer (paramiko) upload new files of 20 to
400 KB as fast as they can; once uploads flow over both protocols, after a random 0
to 1 s the daemon is killed with SIGKILL and started again, ten times, on SQLite and on PostgreSQL. After each
restart `strongroom doctor` reports nothing (no stray blob: a blob published whose
version never committed was removed by the restart; no missing blob, no staging
leftover), and in the end every upload a client was told succeeded reads back
byte-exact. Before the publishing journal, most kills left a stray blob."""
import hashlib
import json
import random
import threading
import time

import paramiko
import pytest
import requests

from tests.support.daemon import HOST, Daemon, running_on

ROUNDS = 10
WRITERS_DAV, WRITERS_SFTP = 2, 1
ANSWER = 30                      # seconds any request may take


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def daemon(request, tmp_path_factory):
    yield from running_on(request.param, tmp_path_factory, "kill9")


def content(name: str) -> bytes:
    size = random.Random(name).randrange(20_000, 400_000)
    return hashlib.shake_256(name.encode()).digest(size)


class Workload:
    """Writers running until `stop`; `acked` holds the paths whose upload succeeded."""

    def __init__(self, d: Daemon, tag: str):
        self.d, self.tag = d, tag
        self.stop = threading.Event()
        self.acked: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._guarded, args=(self.dav, i), daemon=True)
                        for i in range(WRITERS_DAV)]
        self.threads += [threading.Thread(target=self._guarded, args=(self.sftp, i),
                                          daemon=True) for i in range(WRITERS_SFTP)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(ANSWER + 10)
        assert not any(t.is_alive() for t in self.threads), "a writer hung"

    def flowing(self) -> None:
        """Wait until each protocol's first upload succeeded (its login is done)."""
        deadline = time.monotonic() + ANSWER
        while time.monotonic() < deadline:
            with self.lock:
                if {"dav", "sftp"} <= {p.split("-")[1].rstrip("0123456789") for p in self.acked}:
                    return
            time.sleep(0.02)
        pytest.fail("no upload succeeded over both protocols")

    def _guarded(self, writer, i: int) -> None:
        try:
            writer(i)
        except (OSError, EOFError, paramiko.SSHException, requests.RequestException):
            pass     # the daemon was killed under it: what it was told before counts

    def _ack(self, path: str) -> None:
        with self.lock:
            self.acked.append(path)

    def dav(self, i: int) -> None:
        alice = self.d.users["alice"]
        s = requests.Session()
        s.verify, s.trust_env, s.auth = False, False, (alice.login, alice.password)
        for n in range(10_000):
            if self.stop.is_set():
                return
            path = f"/{self.tag}-dav{i}-{n}.bin"
            r = s.put(self.d.url(path), data=content(path), timeout=ANSWER)
            assert r.status_code in (201, 204), (path, r.status_code, r.text[:200])
            self._ack(path)

    def sftp(self, i: int) -> None:
        alice = self.d.users["alice"]
        t = paramiko.Transport((HOST, self.d.sftp_port))
        try:
            t.connect(username=alice.login, password=alice.password)
            c = paramiko.SFTPClient.from_transport(t)
            c.get_channel().settimeout(ANSWER)
            for n in range(10_000):
                if self.stop.is_set():
                    return
                path = f"/{self.tag}-sftp{i}-{n}.bin"
                with c.open(path, "wb") as f:
                    f.set_pipelined(True)
                    f.write(content(path))
                # paramiko's close() drops the CLOSE's status: this stat says it stuck
                if c.stat(path).st_size == len(content(path)):
                    self._ack(path)
        finally:
            t.close()


def doctor(d: Daemon) -> dict:
    proc = d.cli("doctor", "--json")
    return json.loads(proc.stdout)


def test_kill9_during_uploads_leaves_nothing(daemon):
    rng = random.Random(18)
    acked: list[str] = []
    for round_ in range(ROUNDS):
        daemon.ensure_running()
        with Workload(daemon, f"r{round_}") as work:
            work.flowing()
            time.sleep(rng.uniform(0.0, 1.0))
            daemon.kill()
        acked += work.acked
        daemon.start()
        report = doctor(daemon)
        assert report["ok"] and not report["stray_blobs"] and not report["staging_files"], \
            f"round {round_}: {report}"
    assert len(acked) > 3 * ROUNDS, "the workload hardly ran"
    s = requests.Session()
    alice = daemon.users["alice"]
    s.verify, s.trust_env, s.auth = False, False, (alice.login, alice.password)
    for path in acked:
        r = s.get(daemon.url(path), timeout=ANSWER)
        assert r.status_code == 200 and r.content == content(path), path
