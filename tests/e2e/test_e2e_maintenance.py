"""Maintenance with the real daemon and CLI: the daemon's own runs (retention kept
short in [retention]) thin @versions and empty @trash, and neither WebDAV (curl
PROPFIND) nor OpenSSH sftp lists what was purged; `maintenance run --dry-run --json`
and `--json` with an injected clock (the hidden --now); a maintenance run killed
with SIGKILL at random moments leaves every version row with its blob, and the next
run (after a restart too) leaves `doctor` clean. On SQLite and on PostgreSQL."""
import json
import random
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from urllib.parse import unquote, urlsplit

import pytest

from tests.support.daemon import Daemon, need, running_daemon, sftp_lines, sftp_quote as q

pytestmark = pytest.mark.slow     # a long module: started first (tests/conftest.py)

DAY = 86400.0
BUSY = "strongroom: error: maintenance is running in process "


def on_database(request, tmp_path_factory, name, options=None):
    """running_daemon on SQLite, or on a PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield from running_daemon(tmp_path_factory, name, options=options)
        return
    from tests.support import postgres
    with postgres.fresh_database() as url:     # skipped without STRONGROOM_TEST_PG_URL
        yield from running_daemon(tmp_path_factory, name, options=options, database_url=url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def quick(request, tmp_path_factory):
    """Keeps versions a second and trash three, and runs maintenance every second."""
    yield from on_database(request, tmp_path_factory, f"maint-quick-{request.param}", {
        "retention": {"keep_all": "1s", "trash_days": "3s", "interval": "1s"}})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def slow(request, tmp_path_factory):
    """The default [retention]: nothing is old enough until the CLI says it is later."""
    yield from on_database(request, tmp_path_factory, f"maint-slow-{request.param}")


def dav_names(d: Daemon, folder: str) -> list[str]:
    """The names a Depth-1 PROPFIND (curl) of `folder` lists below it."""
    r = d.request("alice", "PROPFIND", folder, "-H", "Depth: 1")
    assert r.status == 207, (r.status, r.body[:300])
    hrefs = [unquote(urlsplit(e.text or "").path).rstrip("/")
             for e in ET.fromstring(r.body).iter("{DAV:}href")]
    return sorted(h.rsplit("/", 1)[-1] for h in hrefs if h != folder.rstrip("/"))


def sftp_names(d: Daemon, folder: str) -> list[str]:
    listing = d.run_sftp("alice", [f"ls -1 {q(folder)}"])
    assert listing.returncode == 0, listing.stderr
    return sorted(line.rsplit("/", 1)[-1] for line in sftp_lines(listing))


def put_versions(d: Daemon, user: str, path: str, count: int) -> None:
    lines = []
    for i in range(count):
        local = d.path(f"{user}-{i}.txt")
        local.write_bytes(f"{user} version {i}\n".encode())
        lines.append(f"put {q(local)} {q(path)}")
    done = d.run_sftp(user, lines)
    assert done.returncode == 0, done.stderr


def until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def maintenance(d: Daemon, *args) -> subprocess.CompletedProcess:
    """`maintenance run ARGS`, again while the daemon's own run holds the lease
    (refused then with one line naming it)."""
    for _ in range(60):
        done = d.cli("maintenance", "run", *args)
        if done.returncode == 0 or not done.stderr.startswith(BUSY):
            return done
        assert done.stderr.count("\n") == 1 and done.stderr.rstrip().endswith("; try later")
        time.sleep(0.5)
    return done


def test_the_daemon_purges_and_neither_protocol_lists_it(quick):
    need("curl", "sftp")
    assert quick.run_sftp("alice", ["mkdir /m"]).returncode == 0
    put_versions(quick, "alice", "/m/a.txt", 5)
    put_versions(quick, "alice", "/m/gone.txt", 1)
    assert quick.request("alice", "DELETE", "/m/gone.txt").status == 204
    # retention: of five versions made within one hour the two newest stay
    assert until(lambda: len(dav_names(quick, "/@versions/m/a.txt")) == 2), \
        dav_names(quick, "/@versions/m/a.txt")
    assert sftp_names(quick, "/@versions/m/a.txt") == dav_names(quick, "/@versions/m/a.txt")
    assert all(n.endswith(" a.txt") for n in sftp_names(quick, "/@versions/m/a.txt"))
    # trash expiry: gone from @trash after three seconds
    assert until(lambda: dav_names(quick, "/@trash") == [])
    assert sftp_names(quick, "/@trash") == []
    got = quick.path("a-now.txt")
    assert quick.run_sftp("alice", [f"get /m/a.txt {q(got)}"]).returncode == 0
    assert got.read_text() == "alice version 4\n"
    events = json.loads(quick.cli("audit", "list", "--action", "purge-version", "--json",
                                  check=True).stdout)
    assert len(events) == 3 and {e["path"] for e in events} == {"/acme/m/a.txt"}
    assert {e["actor"] for e in events} == {"maintenance"}
    trash = json.loads(quick.cli("audit", "list", "--action", "purge-trash", "--json",
                                 check=True).stdout)
    assert [e["path"] for e in trash] == ["/acme/m/gone.txt"]
    assert quick.cli("audit", "verify").returncode == 0
    assert "maintenance removed" in quick.log_text()
    assert quick.cli("doctor").returncode == 0


def test_the_cli_plans_and_runs_with_json(slow):
    put_versions(slow, "alice", "/report.txt", 4)
    put_versions(slow, "alice", "/old.txt", 1)
    assert slow.request("alice", "DELETE", "/old.txt").status == 204
    later = str(time.time() + 40 * DAY)
    dry = maintenance(slow, "--dry-run", "--json", "--now", later)
    assert dry.returncode == 0, dry.stderr
    plan = {r["client"]: r for r in json.loads(dry.stdout)}
    assert set(plan) == {"acme", "beta", None}
    acme = plan["acme"]
    assert (acme["versions"], acme["trash_items"], acme["blobs"], acme["dry_run"]) == \
        (2, 1, 3, True)
    assert acme["bytes"] == 2 * len("alice version 0\n") + len("alice version 0\n")
    assert len(dav_names(slow, "/@versions/report.txt")) == 4     # nothing changed
    done = maintenance(slow, "--json", "--now", later)
    assert done.returncode == 0, done.stderr
    result = {r["client"]: r for r in json.loads(done.stdout)}["acme"]
    assert {k: v for k, v in result.items() if k != "dry_run"} == \
        {k: v for k, v in acme.items() if k != "dry_run"}
    assert len(dav_names(slow, "/@versions/report.txt")) == 2
    assert len(sftp_names(slow, "/@versions/report.txt")) == 2
    assert dav_names(slow, "/@trash") == [] and sftp_names(slow, "/@trash") == []
    human = maintenance(slow, "--now", later)
    assert human.returncode == 0
    assert human.stdout.splitlines()[0] == \
        "acme: removed 0 versions, 0 trash items, 0 blobs, 0 B"


def killed_run(d: Daemon, now: float, at_journal: bool, rng: random.Random) -> None:
    """Start `maintenance run --now NOW` and SIGKILL it: the moment a client's
    transaction is about to commit (its blob journal appears) or at a random moment."""
    journals = d.data_dir / "maintenance"
    proc = subprocess.Popen(["strongroom", "maintenance", "run", "--now", str(now),
                             "--data-dir", str(d.data_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + (30 if at_journal else rng.uniform(0.8, 2.5))
    while time.monotonic() < deadline and proc.poll() is None:
        if at_journal and journals.is_dir() and any(journals.glob("purge-*.json")):
            time.sleep(rng.uniform(0, 0.02))
            break
        time.sleep(0.001 if at_journal else 0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def test_a_run_killed_mid_purge_leaves_no_row_without_its_blob(slow):
    rng = random.Random(14)
    strays = 0
    for round_ in range(4):
        for user in ("alice", "bob"):
            put_versions(slow, user, f"/many-{round_}.txt", 150)
        killed_run(slow, time.time() + (40 + round_) * DAY, round_ % 2 == 0, rng)
        report = json.loads(slow.cli("doctor", "--json").stdout)
        assert report["missing_blobs"] == [], report
        strays += len(report["stray_blobs"])
    assert strays, "no kill came between a commit and its blobs' deletion"
    slow.restart()
    done = maintenance(slow, "--now", str(time.time() + 50 * DAY))
    assert done.returncode == 0, done.stderr
    report = json.loads(slow.cli("doctor", "--json").stdout)
    assert report["ok"], report
    for user in ("alice", "bob"):
        for round_ in range(4):
            got = slow.path(f"{user}-got-{round_}.txt")
            assert slow.run_sftp(user, [f"get /many-{round_}.txt {q(got)}"]).returncode == 0
            assert got.read_text() == f"{user} version 149\n"
