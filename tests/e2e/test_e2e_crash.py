"""A daemon killed or stopped in the middle of uploads loses nothing and shows nothing partial.

Four 200 MiB uploads run at once (OpenSSH sftp and curl, each replacing an
existing file and creating a new one), throttled by the clients so that they
are surely still running when the signal arrives. Then:
- SIGKILL: after a restart every existing file has exactly its previous bytes
  and only its previous version, the new files do not exist, the restart has
  cleaned the staging area and `strongroom doctor` finds the store consistent;
- SIGTERM: the daemon exits cleanly within seconds, having aborted the uploads
  itself (nothing left in staging), with the same guarantees.
"""
import json
import os
import signal
import time

import pytest

from tests.support.daemon import sftp_quote as q

BIG = 200 * 1024 * 1024
RATE_KBIT = 80_000                # sftp -l: ~10 MB/s, so 200 MiB takes ~20 s
RATE_CURL = "10M"                 # curl --limit-rate, the same
RECEIVING = 2 * 1024 * 1024       # staged bytes that show an upload is under way
WAIT = 60                         # seconds for uploads to start, or clients to end
GRACEFUL = 10                     # seconds SIGTERM may take


def ok(proc):
    out = proc.stdout if isinstance(proc.stdout, str) else proc.stdout.decode("utf-8", "replace")
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}"
    return proc


@pytest.fixture(scope="module")
def big_file(daemon):
    path = daemon.path("big.bin")
    with open(path, "wb") as f:
        for _ in range(BIG // (1 << 20)):
            f.write(os.urandom(1 << 20))
    return path


@pytest.fixture(autouse=True)
def running(daemon):
    """Each test starts with a running daemon, even if an earlier one failed mid-way."""
    daemon.ensure_running()


def staged(daemon) -> dict:
    """Staged files and their sizes; one the daemon removes while we look is left out."""
    sizes = {}
    for p in daemon.staging_dir.iterdir():
        try:
            sizes[p.name] = p.stat().st_size
        except FileNotFoundError:
            pass
    return sizes


def start_uploads(daemon, big, sftp_targets, dav_targets) -> list:
    procs = [daemon.sftp_background("alice", [f"put {q(big)} {q(t)}"],
                                    options=("-l", str(RATE_KBIT))) for t in sftp_targets]
    procs += [daemon.curl_background("alice", "--fail", "--limit-rate", RATE_CURL, "-T", big,
                                     daemon.url(t)) for t in dav_targets]
    return procs


def wait_until_receiving(daemon, procs) -> None:
    """Until every upload has staged some data; fails if a client ended first."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                out, err = p.communicate()
                pytest.fail(f"{p.args[:3]} ended before the signal (exit {p.returncode}): "
                            f"{out.decode(errors='replace')} {err.decode(errors='replace')}")
        sizes = staged(daemon)
        if len(sizes) >= len(procs) and all(n >= RECEIVING for n in sizes.values()):
            return
        time.sleep(0.02)
    pytest.fail(f"uploads did not get under way within {WAIT} s: staging {staged(daemon)}")


def kill_client(p) -> None:
    """SIGKILL a background client's whole process group (sshpass, sftp and ssh)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_clients(procs) -> None:
    try:
        for p in procs:
            p.communicate(timeout=WAIT)
            assert p.returncode != 0, f"{p.args[:3]} reported success for an interrupted upload"
    finally:
        for p in procs:
            kill_client(p)
            p.communicate()


def download(daemon, path) -> bytes:
    down = daemon.path("down")
    ok(daemon.run_sftp("alice", [f"get {q(path)} {q(down)}"]))
    return down.read_bytes()


def versions(daemon, path):
    proc = daemon.cli("versions", "list", "/acme" + path, "--json")
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def assert_consistent(daemon) -> None:
    proc = daemon.cli("doctor", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["ok"], report
    assert report["stray_blobs"] == [] and report["missing_blobs"] == [], report
    assert report["staging_files"] == [], report


def assert_nothing_lost_nothing_partial(daemon, previous: dict, new: list) -> None:
    for path, data in previous.items():
        assert download(daemon, path) == data, f"{path} lost its previous bytes"
        assert daemon.request("alice", "GET", path).body == data
        listed = versions(daemon, path)
        assert [(v["size"], v["current"]) for v in listed] == [(len(data), True)], listed
    for path in new:
        assert daemon.run_sftp("alice", [f"ls {q(path)}"]).returncode != 0, f"{path} exists"
        assert daemon.request("alice", "GET", path).status == 404, f"{path} exists"
        assert versions(daemon, path) is None, f"{path} has versions"
    assert_consistent(daemon)


def prepare(daemon, tag, protocols=("sftp", "dav")) -> tuple[dict, list, list, list]:
    """Per protocol an existing file (its contents returned) and a new path to upload to.

    Returns (previous contents by path, new paths, sftp targets, WebDAV targets).
    """
    sizes = {"sftp": 1024 * 1024 + 7, "dav": 300_001}
    previous = {f"/crash-{tag}-{p}-existing.bin": os.urandom(sizes[p]) for p in protocols}
    for path, data in previous.items():
        src = daemon.path("previous")
        src.write_bytes(data)
        ok(daemon.run_sftp("alice", [f"put {q(src)} {q(path)}"]))
    new = [f"/crash-{tag}-{p}-new.bin" for p in protocols]
    sftp_targets = [p for p in (*previous, *new) if "-sftp-" in p]
    dav_targets = [p for p in (*previous, *new) if "-dav-" in p]
    assert staged(daemon) == {}
    return previous, new, sftp_targets, dav_targets


def interrupted_uploads(daemon, big, tag, sig) -> tuple[dict, list, int, float]:
    """Upload onto two existing files and two new ones; send `sig` while they run.

    Returns (previous contents by path, new paths, exit status, seconds to exit).
    """
    previous, new, sftp_targets, dav_targets = prepare(daemon, tag)
    procs = start_uploads(daemon, big, sftp_targets, dav_targets)
    try:
        wait_until_receiving(daemon, procs)
        began = time.monotonic()
        status = daemon.kill(sig)
        elapsed = time.monotonic() - began
    finally:
        wait_clients(procs)
    return previous, new, status, elapsed


def test_sigkill_during_uploads(daemon, big_file):
    previous, new, status, _ = interrupted_uploads(daemon, big_file, "kill", signal.SIGKILL)
    assert status == -signal.SIGKILL
    assert len(staged(daemon)) == 4, "the kill should have left the uploads' staging files"

    daemon.start()

    assert staged(daemon) == {}, "the restart must clean up what the killed daemon left"
    assert_nothing_lost_nothing_partial(daemon, previous, new)


def test_sigterm_during_uploads(daemon, big_file):
    previous, new, status, elapsed = interrupted_uploads(daemon, big_file, "term",
                                                         signal.SIGTERM)
    assert status == 0, f"SIGTERM should stop the daemon cleanly, exit status {status}"
    assert elapsed < GRACEFUL, f"SIGTERM took {elapsed:.1f} s"
    assert staged(daemon) == {}, "a clean stop aborts open uploads itself"
    assert_consistent(daemon)

    daemon.start()

    assert_nothing_lost_nothing_partial(daemon, previous, new)


@pytest.mark.parametrize("protocol", ["sftp", "dav"])
def test_client_dropping_the_connection_mid_upload(daemon, big_file, protocol):
    """A client that dies mid-upload (SIGKILL: no close, no end of body) commits nothing."""
    previous, new, sftp_targets, dav_targets = prepare(daemon, "drop", (protocol,))
    procs = start_uploads(daemon, big_file, sftp_targets, dav_targets)
    try:
        wait_until_receiving(daemon, procs)
    finally:
        for p in procs:
            kill_client(p)
        wait_clients(procs)

    deadline = time.monotonic() + GRACEFUL
    while staged(daemon) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert staged(daemon) == {}, "the daemon should abort uploads whose client went away"
    assert daemon.running
    assert_nothing_lost_nothing_partial(daemon, previous, new)


def test_uploads_work_after_the_crashes(daemon):
    data = os.urandom(3 * 1024 * 1024)
    src = daemon.path("after")
    src.write_bytes(data)
    ok(daemon.run_sftp("alice", [f"put {q(src)} /crash-after.bin"]))
    assert daemon.request("alice", "GET", "/crash-after.bin").body == data
    assert_consistent(daemon)
