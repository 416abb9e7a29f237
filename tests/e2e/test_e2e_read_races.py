"""Reads of a file that is overwritten while they run (issue 18), on SQLite and on
PostgreSQL, with real clients: a WebDAV writer (requests) and an SFTP writer (paramiko)
put new contents of 100,000 and 200,000 bytes in turn, while WebDAV readers GET the
file whole, resume it with Range and If-Range, and an SFTP reader reads it through one
handle. Every read is byte-exact one of the written contents, with the Content-Length
and ETag of that content (an ETag always names the same bytes), or fails with an error
status: never short, never two versions spliced, never waiting past 30 s."""
import hashlib
import threading
import time
from collections import Counter

import paramiko
import pytest
import requests

from tests.support.daemon import HOST, Daemon, running_on

SIZES = (100_000, 200_000)
READERS, GETS = 3, 60          # whole GETs per reader
RESUMES = 30                   # GET, then Range + If-Range, by the resuming reader
SFTP_READS = 20
WRITES = 400                   # most a writer makes before the readers are done
ANSWER = 30                    # seconds any request may take
PATH = "/race.bin"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def daemon(request, tmp_path_factory):
    """alice's daemon, on SQLite or on a PostgreSQL database of its own."""
    yield from running_on(request.param, tmp_path_factory, "read-races")


def content(tag: str, size: int) -> bytes:
    """Bytes no other write has, at every offset: a splice of two shows."""
    return hashlib.shake_256(tag.encode()).digest(size)


class Written:
    """Every content a writer sent (committed or not), by its digest."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_digest: dict[str, bytes] = {}

    def add(self, data: bytes) -> bytes:
        with self._lock:
            self.by_digest[hashlib.sha256(data).hexdigest()] = data
        return data

    def has(self, data: bytes) -> bool:
        with self._lock:
            return self.by_digest.get(hashlib.sha256(data).hexdigest()) == data


class Race:
    """What the threads saw: outcomes counted, faults listed, ETags and their bytes."""

    def __init__(self) -> None:
        self.written = Written()
        self.done = threading.Event()
        self.outcomes: Counter = Counter()
        self.faults: list[str] = []
        self.etags: dict[str, str] = {}
        self._lock = threading.Lock()

    def fault(self, text: str) -> None:
        with self._lock:
            self.faults.append(text)

    def count(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1

    def same_etag_same_bytes(self, etag: str, body: bytes) -> None:
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            if self.etags.setdefault(etag, digest) != digest:
                self.faults.append(f"ETag {etag} named two different contents")


def _dav(d: Daemon) -> requests.Session:
    alice = d.users["alice"]
    s = requests.Session()
    s.verify, s.trust_env = False, False
    s.auth = (alice.login, alice.password)
    return s


def _sftp(d: Daemon) -> tuple[paramiko.Transport, paramiko.SFTPClient]:
    alice = d.users["alice"]
    t = paramiko.Transport((HOST, d.sftp_port))
    t.connect(username=alice.login, password=alice.password)
    sftp = paramiko.SFTPClient.from_transport(t)
    sftp.get_channel().settimeout(ANSWER)
    return t, sftp


def _timed(race: Race, what: str, call):
    """call(), or None after a fault if it raised or took longer than ANSWER."""
    start = time.monotonic()
    try:
        result = call()
    except Exception as e:   # a short body, a reset, a timeout: all faults here
        race.fault(f"{what}: {type(e).__name__}: {e}")
        return None
    if time.monotonic() - start > ANSWER:
        race.fault(f"{what}: answered after {time.monotonic() - start:.1f} s")
    return result


# -- the writers ----------------------------------------------------------------------

def dav_writer(d: Daemon, race: Race) -> None:
    with _dav(d) as s:
        for i in range(WRITES):
            if race.done.is_set():
                return
            data = race.written.add(content(f"dav-{i}", SIZES[i % 2]))
            r = _timed(race, "PUT", lambda: s.put(d.url(PATH), data=data, timeout=ANSWER))
            if r is not None and r.status_code not in (201, 204):
                race.fault(f"PUT answered {r.status_code}")


def sftp_writer(d: Daemon, race: Race) -> None:
    t, sftp = _sftp(d)
    try:
        for i in range(WRITES):
            if race.done.is_set():
                return
            data = race.written.add(content(f"sftp-{i}", SIZES[(i + 1) % 2]))

            def write() -> None:
                with sftp.open(PATH, "wb") as f:
                    f.write(data)
            _timed(race, "SFTP write", write)
    finally:
        t.close()


# -- the readers ----------------------------------------------------------------------

def check_whole(race: Race, r: requests.Response, what: str) -> bytes | None:
    """The body of a 200 if it is one written content, with its length and ETag."""
    if r.status_code != 200:
        race.count(f"{what} {r.status_code}")
        return None
    body, etag = r.content, r.headers.get("ETag", "")
    if int(r.headers.get("Content-Length", -1)) != len(body) or not race.written.has(body):
        race.fault(f"{what}: {len(body)} bytes (Content-Length "
                   f"{r.headers.get('Content-Length')}), not one written content")
        return None
    race.same_etag_same_bytes(etag, body)
    race.count(f"{what} exact")
    return body


def whole_reader(d: Daemon, race: Race) -> None:
    with _dav(d) as s:
        for _ in range(GETS):
            r = _timed(race, "GET", lambda: s.get(d.url(PATH), timeout=ANSWER))
            if r is not None:
                check_whole(race, r, "GET")


def resuming_reader(d: Daemon, race: Race) -> None:
    """GET whole, then its second half with If-Range: the same version's second half
    (206), or the whole of whatever is current now (200, another ETag)."""
    with _dav(d) as s:
        for _ in range(RESUMES):
            r = _timed(race, "GET", lambda: s.get(d.url(PATH), timeout=ANSWER))
            first = None if r is None else check_whole(race, r, "GET")
            if first is None:
                continue
            etag = r.headers["ETag"]
            r = _timed(race, "resume", lambda: s.get(
                d.url(PATH), timeout=ANSWER,
                headers={"Range": "bytes=50000-", "If-Range": etag}))
            if r is None or r.status_code != 206:
                if r is not None and check_whole(race, r, "resume") is not None and \
                        r.headers["ETag"] == etag:
                    race.fault("If-Range matched, yet the whole file was sent")
                continue
            want = f"bytes 50000-{len(first) - 1}/{len(first)}"
            if r.headers.get("ETag") != etag or r.headers.get("Content-Range") != want or \
                    r.content != first[50000:]:
                race.fault(f"resume of {etag}: {r.headers.get('ETag')} "
                           f"{r.headers.get('Content-Range')}, {len(r.content)} bytes, "
                           "not the second half of that version")
            else:
                race.count("resume exact")


def sftp_reader(d: Daemon, race: Race) -> None:
    """One open handle reads one version: its fstat size and its bytes agree."""
    t, sftp = _sftp(d)
    try:
        for _ in range(SFTP_READS):
            def read() -> tuple[int, bytes]:
                with sftp.open(PATH, "rb") as f:
                    size = f.stat().st_size
                    return size, f.read()
            got = _timed(race, "SFTP read", read)
            if got is None:
                continue
            size, body = got
            if size != len(body) or not race.written.has(body):
                race.fault(f"SFTP read: {len(body)} bytes of {size}, not one written content")
            else:
                race.count("SFTP read exact")
    finally:
        t.close()


def test_reads_during_overwrites_are_one_version_each(daemon):
    race = Race()
    with _dav(daemon) as s:
        first = race.written.add(content("first", SIZES[1]))
        assert s.put(daemon.url(PATH), data=first, timeout=ANSWER).status_code in (201, 204)
    writers = [threading.Thread(target=w, args=(daemon, race)) for w in (dav_writer, sftp_writer)]
    readers = [threading.Thread(target=whole_reader, args=(daemon, race))
               for _ in range(READERS)]
    readers += [threading.Thread(target=f, args=(daemon, race))
                for f in (resuming_reader, sftp_reader)]
    for t in writers + readers:
        t.start()
    for t in readers:
        t.join(600)
    race.done.set()
    for t in writers:
        t.join(120)
    assert not any(t.is_alive() for t in writers + readers), "a client thread is stuck"
    assert not race.faults, f"{len(race.faults)} faults ({dict(race.outcomes)}): " + \
        "; ".join(race.faults[:10])
    exact = race.outcomes["GET exact"]
    assert exact >= READERS * GETS // 2, f"too few whole reads: {dict(race.outcomes)}"
    assert race.outcomes["resume exact"] > 0, \
        dict(race.outcomes)
    assert race.outcomes["SFTP read exact"] >= SFTP_READS // 2, dict(race.outcomes)
    assert len(race.etags) > 2, "the file was not overwritten while it was read"
