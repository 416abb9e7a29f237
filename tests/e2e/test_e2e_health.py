"""Health and observability against the real daemon: `strongroom status` in good
and broken states, GET /healthz, Prometheus metrics, the log (one line per login,
JSON format) and a corrupt blob logged at ERROR."""
import json
import os
import socket
import time
import urllib.request
from contextlib import contextmanager

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.daemon import HOST, free_ports


@contextmanager
def configured(daemon, section: str, restart: bool = False, **values):
    """`values` in [section] of strongroom.toml for the block, then the old ones again;
    with `restart`, the daemon runs with them (and afterwards without)."""
    conf = daemon.data_dir / "strongroom.toml"
    saved = conf.read_text("utf-8")
    daemon.set_options(section, **values)
    try:
        if restart:
            daemon.restart()
        yield
    finally:
        conf.write_text(saved, "utf-8")
        if restart:
            daemon.restart()


def status(daemon, *args):
    proc = daemon.cli("status", *args)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def line_of(out: str, name: str) -> str:
    lines = [ln for ln in out.splitlines() if ln.startswith(name + " ")]
    assert len(lines) == 1, out
    return lines[0]


# -- strongroom status ----------------------------------------------------------------

def test_status_of_a_running_daemon(daemon):
    proc = status(daemon, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True and report["attention"] == []
    assert report["daemon"]["running"] is True
    assert report["daemon"]["pid"] == daemon.proc.pid
    assert 0 <= report["daemon"]["uptime_seconds"] < 3600
    assert report["daemon"]["version"]
    assert (report["webdav"]["port"], report["webdav"]["accepting"]) == (daemon.webdav_port,
                                                                         True)
    assert "200" in report["webdav"]["answer"]
    assert (report["sftp"]["port"], report["sftp"]["accepting"]) == (daemon.sftp_port, True)
    assert report["database"]["ok"] is True
    assert report["database"]["revision"] == report["database"]["head"]
    assert report["master_key"]["ok"] is True
    assert report["master_key"]["matches_database"] is True
    key = (daemon.data_dir / "master.key").read_bytes()
    assert key.hex() not in proc.stdout and key.hex().upper() not in proc.stdout
    disk = report["disk"]
    assert disk["ok"] is True and disk["free_bytes"] >= disk["reserve_bytes"] > 0
    assert report["staging"]["files"] >= 0
    human = status(daemon)
    assert human.returncode == 0
    assert human.stdout.strip().splitlines()[-1] == "all well"
    assert "ok" in line_of(human.stdout, "database")


def test_status_of_a_stopped_daemon_says_not_running_and_writes_nothing(daemon):
    daemon.stop()
    try:
        before = sorted(os.listdir(daemon.data_dir))
        events = daemon.cli("audit", "list", "--all", "--json", check=True).stdout
        proc = status(daemon)
        assert proc.returncode == 1
        assert "ATTENTION" in line_of(proc.stdout, "daemon")
        assert "not running" in line_of(proc.stdout, "daemon")
        assert "ATTENTION" not in line_of(proc.stdout, "database")
        assert proc.stdout.strip().splitlines()[-1] == "needs attention: daemon"
        # read-only SQLite without the -wal/-shm files it would leave (owned by the caller)
        assert sorted(os.listdir(daemon.data_dir)) == before
        assert daemon.cli("audit", "list", "--all", "--json", check=True).stdout == events
    finally:
        daemon.start()


def test_status_with_the_database_unreachable_is_one_clear_line(daemon):
    with configured(daemon, "database", url="postgresql+psycopg2://u@127.0.0.1:9/db"):
        proc = status(daemon)
        report = json.loads(status(daemon, "--json").stdout)
    assert proc.returncode == 1 and proc.stderr == ""
    line = line_of(proc.stdout, "database")
    assert "ATTENTION" in line and "127.0.0.1" in line and "port 9" in line
    assert "database" in proc.stdout.strip().splitlines()[-1]
    assert report["database"]["ok"] is False and report["attention"] == ["database"]
    # the daemon, its ports and the key are still looked at
    assert report["daemon"]["running"] is True and report["webdav"]["ok"] is True


def test_status_with_a_wrong_or_short_master_key(daemon):
    key = daemon.data_dir / "master.key"
    original = key.read_bytes()
    try:
        key.write_bytes(os.urandom(32))
        proc = status(daemon)
        assert proc.returncode == 1
        assert "does not open the clients' keys" in line_of(proc.stdout, "master key")
        key.write_bytes(original[:31])
        proc = status(daemon)
        assert proc.returncode == 1
        assert "exactly 32 bytes" in line_of(proc.stdout, "master key")
        assert original.hex() not in proc.stdout
    finally:
        key.write_bytes(original)
    assert status(daemon).returncode == 0


def test_status_with_a_key_file_others_can_read(daemon):
    key = daemon.data_dir / "master.key"
    try:
        key.chmod(0o644)
        proc = status(daemon)
        assert proc.returncode == 1
        assert "readable by others than its owner (mode 0644)" in line_of(proc.stdout,
                                                                           "master key")
    finally:
        key.chmod(0o600)
    assert status(daemon).returncode == 0


def test_status_with_free_space_below_the_reserve(daemon):
    with configured(daemon, "storage", reserve="100%"):
        proc = status(daemon)
    assert proc.returncode == 1
    line = line_of(proc.stdout, "disk")
    assert "ATTENTION" in line and "reserve" in line and "uploads are refused" in line


# -- /healthz -------------------------------------------------------------------------

def healthz(daemon):
    return daemon.curl(None, "-i", daemon.url("/healthz")).stdout.decode()


def test_healthz_answers_ok_without_credentials_and_is_not_a_login(daemon):
    failed_before = daemon.cli("audit", "list", "--failed", "--all", "--json",
                               check=True).stdout
    for _ in range(25):    # more than max_unauthenticated_per_address from one address
        answer = healthz(daemon)
        assert answer.startswith("HTTP/1.1 200"), answer
    head, body = answer.split("\r\n\r\n", 1)
    assert body == "ok\n"
    assert "Cache-Control: no-store" in head
    assert "Connection: close" in head     # a probe holds no connection between probes
    assert daemon.cli("audit", "list", "--failed", "--all", "--json",
                      check=True).stdout == failed_before
    # with credentials it is WebDAV's: a user's own file named healthz stays theirs
    assert daemon.request("alice", "GET", "/healthz").status == 404


def test_healthz_answers_not_ok_when_uploads_cannot_start(daemon):
    staging = daemon.staging_dir
    aside = staging.with_name("staging-aside")
    staging.rename(aside)
    staging.write_bytes(b"")     # a file where the staging folder should be
    try:
        time.sleep(1.1)          # an answer is remembered for a second (webdav/probes.py)
        answer = healthz(daemon)
        assert answer.startswith("HTTP/1.1 503"), answer
        assert answer.split("\r\n\r\n", 1)[1] == "not ok\n"
        assert "staging" not in answer
        assert "/healthz answers 'not ok': storage" in daemon.log_since_start()
        assert "ATTENTION" in line_of(status(daemon).stdout, "webdav")
    finally:
        staging.unlink()
        aside.rename(staging)
    time.sleep(1.1)
    assert healthz(daemon).startswith("HTTP/1.1 200")


# -- metrics ----------------------------------------------------------------------------

def samples(text: str) -> dict:
    """{(name, frozenset(labels)): value} of a metrics page."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(page: dict, name: str, **labels) -> float:
    return page.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_off_by_default(daemon):
    answer = daemon.request(None, "GET", "/metrics")
    assert answer.status == 401 and b"strongroom_" not in answer.body


def test_metrics_count_requests_logins_bytes_and_uploads(daemon):
    with configured(daemon, "metrics", restart=True, enabled=True):
        before = samples(daemon.request(None, "GET", "/metrics").body.decode())
        up = daemon.path("up.bin")
        up.write_bytes(os.urandom(100_000))
        assert daemon.request("alice", "PUT", "/m-webdav.bin", "-T", str(up)).status == 201
        assert daemon.request("alice", "GET", "/m-webdav.bin").status == 200
        proc = daemon.run_sftp("bob", [f"put {up} m-sftp.bin"])
        assert proc.returncode == 0, proc.stderr
        wrong = daemon.curl(None, "-u", "alice:wrong", "-o", "/dev/null", daemon.url("/"))
        assert wrong.returncode == 0
        answer = daemon.request(None, "GET", "/metrics")
        after = samples(answer.body.decode())
    assert answer.status == 200

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("strongroom_requests_total", protocol="webdav", operation="PUT",
                outcome="2xx") == 1
    assert grew("strongroom_requests_total", protocol="webdav", operation="GET",
                outcome="4xx") >= 1
    assert grew("strongroom_requests_total", protocol="sftp", operation="write",
                outcome="ok") >= 1
    assert grew("strongroom_logins_total", protocol="webdav", outcome="failed") == 1
    assert grew("strongroom_logins_total", protocol="sftp", outcome="ok") == 1
    assert grew("strongroom_transferred_bytes_total", protocol="webdav", direction="up") \
        == 100_000
    assert grew("strongroom_transferred_bytes_total", protocol="webdav", direction="down") \
        == 100_000
    assert grew("strongroom_transferred_bytes_total", protocol="sftp", direction="up") \
        == 100_000
    assert grew("strongroom_upload_duration_seconds_count", protocol="sftp") == 1
    assert grew("strongroom_upload_duration_seconds_count", protocol="webdav") == 1
    assert value(after, "strongroom_active_sessions", protocol="sftp") == 0
    assert ("strongroom_requests_total", frozenset({("protocol", "webdav"),
            ("operation", "GET"), ("outcome", "2xx")})) in after


def test_metrics_on_a_listener_of_their_own(daemon):
    port = free_ports(1)[0]
    with configured(daemon, "metrics", restart=True, enabled=True,
                    listen=f"{HOST}:{port}"):
        with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as r:
            assert b"strongroom_info" in r.read()
        assert daemon.request(None, "GET", "/metrics").status == 401
    with pytest.raises(OSError):    # gone with the restart without it
        socket.create_connection((HOST, port), timeout=2).close()


# -- the log ---------------------------------------------------------------------------

def test_one_log_line_per_login_on_each_protocol(daemon):
    user = daemon.add_user("onelog", totp=False)
    assert daemon.request(user, "PROPFIND", "/", "-H", "Depth: 0").status == 207
    proc = daemon.run_sftp(user, ["ls"])
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in daemon.log_since_start().splitlines() if "onelog" in ln]
    assert len([ln for ln in lines if "webdav login onelog " in ln]) == 1, lines
    assert len([ln for ln in lines if "sftp login onelog " in ln]) == 1, lines
    assert len(lines) == 2, lines


def test_json_log_format(daemon):
    with configured(daemon, "log", restart=True, format="json"):
        assert daemon.request("alice", "PROPFIND", "/", "-H", "Depth: 0").status == 207
        daemon.curl(None, "-u", "bob:wrong", "-o", "/dev/null", daemon.url("/"))
        text = daemon.log_since_start()
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert events
    for e in events:
        assert {"time", "level", "logger", "message"} <= set(e), e
    logins = [e for e in events if e.get("login") == "bob"]
    assert logins and logins[-1]["outcome"] == "failed"
    assert logins[-1]["protocol"] == "webdav" and logins[-1]["address"] == HOST


def test_a_corrupt_blob_is_logged_at_error_with_client_path_and_version(daemon):
    before = set(daemon.blob_dir.glob("??/*"))
    data = os.urandom(300_000)
    src = daemon.path("corrupt.bin")
    src.write_bytes(data)
    assert daemon.request("alice", "PUT", "/corrupt-me.bin", "-T", str(src)).status == 201
    (blob,) = set(daemon.blob_dir.glob("??/*")) - before
    raw = bytearray(blob.read_bytes())
    raw[100] ^= 0xFF                         # inside the first chunk's ciphertext
    blob.write_bytes(bytes(raw))
    assert daemon.request("alice", "GET", "/corrupt-me.bin").status == 500
    errors = [ln for ln in daemon.log_since_start().splitlines()
              if " ERROR " in ln and "integrity" in ln]
    assert len(errors) == 1, errors
    assert "client acme" in errors[0] and "path /acme/corrupt-me.bin" in errors[0]
    assert "version " in errors[0] and blob.name in errors[0]
