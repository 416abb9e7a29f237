"""WebDAV PUTs racing MOVEs a<->b with overwrite, from 4 threads, against the daemon on
PostgreSQL (issue 18): no request answers 500, every acknowledged upload is a version
of a live file (`strongroom versions list`), the client's usage is the sum of the live
files' current versions, and `doctor` finds nothing wrong."""
import json
import threading
import time

import pytest
import requests
import urllib3

from tests.support.daemon import HOST, Daemon, need

THREADS, ROUNDS = 4, 25
ANSWER = 30     # seconds any request may take


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    need("strongroom")
    d = Daemon(tmp_path_factory.mktemp("pg-concurrency"))
    from tests.support import postgres
    with postgres.fresh_database() as url:     # skipped without STRONGROOM_TEST_PG_URL
        d.cli("init", "--host", HOST, "--webdav-port", d.webdav_port,
              "--sftp-port", d.sftp_port, check=True)
        d.set_options("database", url=url)
        d.cli("client", "add", "acme", check=True)
        d.add_user("alice", "acme", totp=False)
        d.start()
        try:
            yield d
        finally:
            if d.running:
                d.stop()


def _dav(d: Daemon) -> requests.Session:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    alice = d.users["alice"]
    s = requests.Session()
    s.verify, s.trust_env = False, False
    s.auth = (alice.login, alice.password)
    return s


def test_puts_racing_moves_on_postgresql(daemon):
    acknowledged, statuses, lock = [], [], threading.Lock()
    start = threading.Barrier(THREADS)

    def uploader(k):
        s = _dav(daemon)
        start.wait()
        for i in range(ROUNDS):
            size = 1000 + 10 * (ROUNDS * k + i)      # a size no other upload has
            name = ("a.bin", "b.bin")[(i + k) % 2]
            r = s.put(daemon.url(f"/{name}"), data=bytes([k]) * size, timeout=ANSWER)
            with lock:
                statuses.append(("PUT", r.status_code))
                if r.status_code in (201, 204):
                    acknowledged.append(size)

    def mover(k):
        s = _dav(daemon)
        start.wait()
        for i in range(ROUNDS):
            src, dst = ("a.bin", "b.bin") if (i + k) % 2 else ("b.bin", "a.bin")
            r = s.request("MOVE", daemon.url(f"/{src}"), timeout=ANSWER,
                          headers={"Destination": daemon.url(f"/{dst}"), "Overwrite": "T"})
            with lock:
                statuses.append(("MOVE", r.status_code))

    threads = [threading.Thread(target=uploader, args=(k,)) for k in range(2)] + \
              [threading.Thread(target=mover, args=(k,)) for k in range(2)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(ANSWER * ROUNDS)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert time.monotonic() - began < ANSWER * ROUNDS
    unexpected = [s for s in statuses if s[1] not in (201, 204, 404)]
    assert unexpected == []
    assert len(acknowledged) > ROUNDS    # most PUTs succeed: the race really ran

    versions, current = {}, 0
    for name in ("a.bin", "b.bin"):
        out = daemon.cli("versions", "list", f"/acme/{name}", "--json")
        if out.returncode != 0:
            continue   # moved away last
        for v in json.loads(out.stdout):
            versions[v["size"]] = name
            current += v["size"] if v["current"] else 0
    assert versions, "neither file is there"
    lost = [size for size in acknowledged if size not in versions]
    assert lost == [], "acknowledged uploads are versions of no live file"

    clients = json.loads(daemon.cli("client", "list", "--json", check=True).stdout)
    used = next(c["used_bytes"] for c in clients if c["name"] == "acme")
    assert used == current
    doctor = daemon.cli("doctor", "--json")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "Traceback" not in daemon.log_since_start()
