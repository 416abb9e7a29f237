"""Fault scenarios, one daemon per database for all of them (provisioning costs more than a
scenario): writers racing writers, renames and readers over WebDAV and SFTP at once; a
large download while its file is deleted, overwritten or renamed; the CLI changing
things during traffic; a soak of small files. kill -9 is test_faults_kill9.py."""
import threading
import time

import pytest
import requests

from tests.support.faults import (TIMEOUT, Dav, Ledger, Sftp, check_acknowledged, healthy,
                                  no_errors_logged, payload, process_usage, sha,
                                  versions_json)

pytestmark = pytest.mark.slow     # a long module: started first (tests/conftest.py)

ROUNDS = 6


def run_threads(*targets, timeout: float = 120) -> list[BaseException]:
    """Run the callables in threads; the exceptions they raised (a hang fails here)."""
    errors: list[BaseException] = []

    def wrap(fn):
        def body():
            try:
                fn()
            except BaseException as e:     # reported by the test, with the others
                errors.append(e)
        return body
    threads = [threading.Thread(target=wrap(t), daemon=True) for t in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"a client hung for {timeout} s"
    return errors


def test_one_file_written_over_both_protocols_and_read_meanwhile(daemon):
    """Two writers (WebDAV, SFTP) alternate 100,000- and 200,000-byte contents on one
    file while three readers GET it: every acknowledged upload is a version, byte-exact;
    every 200 GET is exactly one upload's bytes with its own length and ETag."""
    alice = daemon.users["alice"]
    ledger, path = Ledger(), "/same.bin"
    bad_reads: list[str] = []
    stop = threading.Event()

    def dav_writer():
        dav = Dav(daemon, alice)
        for i in range(ROUNDS):
            data = payload(100_000 if i % 2 else 200_000, f"dav{i}")
            ledger.sent(data)
            if dav.put(path, data) in (200, 201, 204):
                ledger.ack(path, data)

    def sftp_writer():
        client = Sftp(daemon, alice)
        try:
            for i in range(ROUNDS):
                data = payload(200_000 if i % 2 else 100_000, f"sftp{i}")
                ledger.sent(data)
                client.put(path, data)
                ledger.ack(path, data)
        finally:
            client.close()

    def reader():
        dav = Dav(daemon, alice)
        while not stop.is_set():
            try:
                r = dav.get(path)
            except requests.Timeout:
                bad_reads.append("a GET got no answer for 30 s")
                continue
            except requests.ConnectionError:     # failed with an error: allowed
                continue
            if r.status_code == 404:
                continue
            if r.status_code != 200:
                bad_reads.append(f"GET {r.status_code}")
                continue
            if sha(r.content) not in ledger.known or \
                    len(r.content) != int(r.headers["Content-Length"]):
                bad_reads.append(f"{len(r.content)} bytes, not one upload's "
                                 f"(Content-Length {r.headers.get('Content-Length')})")

    readers = [threading.Thread(target=reader, daemon=True) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        errors = run_threads(dav_writer, sftp_writer)
    finally:
        stop.set()
        for t in readers:
            t.join(35)
    assert not errors, errors
    assert not bad_reads, bad_reads[:5]
    assert len(ledger.acked[path]) == 2 * ROUNDS
    check_acknowledged(Dav(daemon, alice), ledger)
    no_errors_logged(daemon)
    healthy(daemon)


def test_a_folder_renamed_back_and_forth_while_files_go_in_and_out(daemon):
    """One client renames /box <-> /crate; two upload into whichever name they find and
    one downloads: refusals are clean (404/409), and every acknowledged upload is in
    the folder at one of its two names afterwards."""
    alice = daemon.users["alice"]
    ledger = Ledger()
    dav = Dav(daemon, alice)
    assert dav.mkcol("/box") in (201, 405)
    statuses: list[int] = []

    def renamer():
        d = Dav(daemon, alice)
        names = ("/box", "/crate")
        for i in range(ROUNDS * 2):
            statuses.append(d.move(names[i % 2], names[(i + 1) % 2], overwrite=False))

    def uploader(tag):
        d = Dav(daemon, alice)
        for i in range(ROUNDS):
            data = payload(20_000 + i, f"{tag}{i}")
            ledger.sent(data)
            for folder in ("/box", "/crate"):
                status = d.put(f"{folder}/{tag}-{i}.bin", data)
                statuses.append(status)
                if status in (200, 201, 204):
                    ledger.ack(f"/{tag}-{i}.bin", data)
                    break

    def downloader():
        d = Dav(daemon, alice)
        for _ in range(ROUNDS * 2):
            for folder in ("/box", "/crate"):
                statuses.append(d.get(f"{folder}/u-0.bin").status_code)

    errors = run_threads(renamer, lambda: uploader("u"), lambda: uploader("v"), downloader)
    assert not errors, errors
    assert not [s for s in statuses if s >= 500], sorted(set(statuses))
    where = {p: [f"/box{p}", f"/crate{p}"] for p in ledger.acked}
    check_acknowledged(dav, ledger, where)
    no_errors_logged(daemon)
    healthy(daemon)


BIG = 50_000_000


def test_a_large_download_while_its_file_is_deleted_overwritten_or_renamed(daemon):
    """A 50 MB GET is started, and the file is deleted, overwritten or renamed under it:
    the download completes with the bytes of the version it started on, or fails with
    an error; never silently short, never other bytes."""
    alice = daemon.users["alice"]
    dav = Dav(daemon, alice)
    original = payload(BIG, "big")
    for change in ("delete", "overwrite", "rename"):
        path = f"/big-{change}.bin"
        assert dav.put(path, original) in (201, 204)
        reader = Dav(daemon, alice)
        r = reader.s.get(reader.url(path), stream=True, timeout=TIMEOUT)
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == BIG
        chunks = r.iter_content(1 << 20)
        got = bytearray(next(chunks))
        other = Dav(daemon, alice)
        if change == "delete":
            assert other.delete(path) == 204
        elif change == "overwrite":
            assert other.put(path, payload(BIG // 2, "newer")) in (201, 204)
        else:
            assert other.move(path, path + ".moved") in (201, 204)
        try:
            for chunk in chunks:
                got += chunk
        except requests.RequestException:
            continue                       # failed with an error: allowed
        assert len(got) == BIG and sha(bytes(got)) == sha(original), \
            f"{change}: {len(got)} bytes, not the version the GET started on"
    no_errors_logged(daemon)
    healthy(daemon)


def test_admin_commands_during_client_traffic(daemon):
    """Grants, a restore, a user disabled and enabled, from the CLI, while a client
    uploads and reads: every CLI command succeeds, no request fails with 5xx."""
    alice = daemon.users["alice"]
    statuses: list[int] = []
    stop = threading.Event()

    def traffic():
        d = Dav(daemon, alice)
        i = 0
        while not stop.is_set() and i < 200:
            i += 1
            statuses.append(d.put(f"/traffic/{i % 5}.txt", payload(2_000, f"t{i}")))
            statuses.append(d.get(f"/traffic/{i % 5}.txt").status_code)

    assert Dav(daemon, alice).mkcol("/traffic") in (201, 405)
    assert Dav(daemon, alice).put("/traffic/0.txt", b"first") in (201, 204)
    t = threading.Thread(target=traffic, daemon=True)
    t.start()
    try:
        for args in (("acl", "grant", "/acme/traffic", "--user", "staff", "--rights", "read"),
                     ("acl", "revoke", "/acme/traffic", "--user", "staff"),
                     ("user", "disable", "bob"), ("user", "enable", "bob")):
            done = daemon.cli(*args)
            assert done.returncode == 0, f"{args}: {done.stderr}"
        versions = versions_json(daemon, "/acme/traffic/0.txt")
        oldest = min(versions, key=lambda v: v["id"])
        done = daemon.cli("versions", "restore", "/acme/traffic/0.txt", str(oldest["id"]))
        assert done.returncode == 0, done.stderr
    finally:
        stop.set()
        t.join(60)
    assert not t.is_alive(), "the client hung"
    assert statuses and not [s for s in statuses if s >= 500], sorted(set(statuses))
    no_errors_logged(daemon)
    healthy(daemon)


def test_a_soak_of_small_files_leaves_descriptors_and_memory_where_they_were(daemon):
    """Four connections put and get small files; afterwards the daemon's open
    descriptors are back to their level and its memory has not grown without bound."""
    alice = daemon.users["alice"]
    Dav(daemon, alice).mkcol("/soak")
    warm = Dav(daemon, alice)
    for i in range(20):                          # caches, pools and threads warmed up
        warm.put(f"/soak/warm{i}.txt", b"x")
    time.sleep(1)
    fds0, rss0 = process_usage(daemon.proc.pid)
    statuses: list[int] = []

    def stream(n):
        d = Dav(daemon, alice)
        for i in range(60):
            statuses.append(d.put(f"/soak/{n}-{i % 10}.txt", payload(4096, f"{n}.{i}")))
            statuses.append(d.get(f"/soak/{n}-{i % 10}.txt").status_code)
        d.s.close()

    errors = run_threads(*(lambda n=n: stream(n) for n in range(4)))
    assert not errors, errors
    assert not [s for s in statuses if s >= 400], sorted(set(statuses))
    time.sleep(2)                                # keep-alive connections closed by now
    fds1, rss1 = process_usage(daemon.proc.pid)
    assert fds1 <= fds0 + 4, f"descriptors {fds0} -> {fds1}"
    assert rss1 - rss0 < 40 * 1024, f"resident memory {rss0} KiB -> {rss1} KiB"
    healthy(daemon)


# kill -9 at random moments, ten times: tests/faults/test_faults_kill9.py
