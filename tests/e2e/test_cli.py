"""The CLI contract of PRODUCT.md, driven as a subprocess like an admin's script would."""
import json
import os
import stat
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow     # a long module: started first (tests/conftest.py)


def cli(data_dir, *args, input=None, env=None):
    return subprocess.run([sys.executable, "-m", "strongroom.appliance.cli", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, input=input, timeout=120,
                          env=None if env is None else {**os.environ, **env})


def me() -> str:
    """How audit events name the admin running the test's commands."""
    import pwd
    sudo = os.environ.get("SUDO_USER") if os.getuid() == 0 else None
    return "admin:" + (sudo or pwd.getpwuid(os.getuid()).pw_name)


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    r = cli(d, "init", "--host", "127.0.0.1", "--webdav-port", "0", "--sftp-port", "0")
    assert r.returncode == 0, r.stderr
    return d


def test_init_makes_private_keys_and_is_idempotent(data_dir):
    for rel in ("master.key", "ssh/ssh_host_ed25519_key", "ssh/ssh_host_rsa_key", "tls/key.pem",
                "strongroom.toml"):
        assert stat.S_IMODE(os.stat(data_dir / rel).st_mode) == 0o600, rel
    before = {p: (data_dir / p).read_bytes() for p in ("master.key", "ssh/ssh_host_ed25519_key")}
    r = cli(data_dir, "init")
    assert r.returncode == 0, r.stderr
    assert {p: (data_dir / p).read_bytes() for p in before} == before


def test_user_add_json_contract(data_dir):
    assert cli(data_dir, "client", "add", "acme", "--quota", "10GiB").returncode == 0
    out = json.loads(cli(data_dir, "user", "add", "alice", "--client", "acme", "--json").stdout)
    assert out["login"] == "alice" and len(out["password"]) >= 16
    assert out["totp_secret"] and out["otpauth_uri"].startswith("otpauth://totp/")
    r = cli(data_dir, "user", "add", "sam", "--staff", "--no-totp", "--password-stdin", "--json",
            input="a long staff passphrase\n")
    out = json.loads(r.stdout)
    assert "password" not in out and "totp_secret" not in out and out["role"] == "staff"
    users = json.loads(cli(data_dir, "user", "list", "--json").stdout)
    assert [(u["login"], u["role"], u["client"]) for u in users] == [
        ("alice", "client", "acme"), ("sam", "staff", None)]
    clients = json.loads(cli(data_dir, "client", "list", "--json").stdout)
    assert clients == [{"name": "acme", "display_name": None, "quota_bytes": 10 * 1024**3,
                        "used_bytes": 0, "disabled": False, "history_bytes": 0,
                        "trash_bytes": 0}]


@pytest.mark.parametrize("args, message", [
    (("client", "add", "../evil"), "client names are"),
    (("user", "add", "x1", "--client", "nope", "--no-totp"), "no client named 'nope'"),
    (("user", "add", "x2", "--client", "a", "--staff"), "exactly one of"),
    (("versions", "list", "/acme/missing.txt"), "no such client or library: acme"),
    (("versions", "restore", "/f", "1"), "no such client or library: f"),
    (("trash", "list", "/acme"), "no such client or library: acme"),
    (("audit", "list", "--since", "yesterday"), "expected a duration"),
    (("trash", "restore", "x17"), "not an item of the trash"),
])
def test_errors_are_one_line_and_nonzero(data_dir, args, message):
    r = cli(data_dir, *args)
    assert r.returncode != 0
    assert message.lower() in r.stderr.lower(), r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("password, reason", [
    ("short", "at least 10 characters"), ("my-alice-password", "must not contain the login"),
    ("Password123", "most common passwords"), ("QWERTYUIOP", "most common passwords"),
])
def test_weak_password_refused(data_dir, password, reason):
    cli(data_dir, "client", "add", "acme")
    r = cli(data_dir, "user", "add", "alice", "--client", "acme", "--password-stdin",
            input=f"{password}\n")
    assert r.returncode == 1 and reason in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    cli(data_dir, "user", "add", "alice", "--client", "acme", "--no-totp")
    r = cli(data_dir, "user", "passwd", "alice", "--password-stdin", input=f"{password}\n")
    assert r.returncode == 1 and reason in r.stderr


def test_bad_config_value_names_file_and_option(data_dir):
    cfg = data_dir / "strongroom.toml"
    cfg.write_text(cfg.read_text().replace("webdav_port = 0", 'webdav_port = "https"'))
    r = cli(data_dir, "client", "list")
    assert r.returncode == 1
    assert str(cfg) in r.stderr and "server.webdav_port" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_unknown_option_is_an_error(data_dir):
    cfg = data_dir / "strongroom.toml"
    cfg.write_text(cfg.read_text() + "\n[storage]\nchunksize = 5\n")
    r = cli(data_dir, "client", "list")
    assert r.returncode == 1 and "storage" in r.stderr


def test_doctor_on_fresh_store(data_dir):
    r = cli(data_dir, "doctor", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["ok"] is True


@pytest.mark.parametrize("args", [("client", "list"), ("doctor",), ("serve",)])
def test_an_unknown_storage_backend_is_one_line_naming_file_and_option(data_dir, args):
    from strongroom import config as configmod
    configmod.set_options(data_dir, "storage", {"backend": "s3"})
    r = cli(data_dir, *args)
    assert r.returncode == 1 and r.stdout == "", r.stdout + r.stderr
    assert r.stderr == (f"strongroom: error: {data_dir / 'strongroom.toml'}: option "
                        "storage.backend: unknown backend 's3' (the backends: local)\n")


def test_audit_list_filters_and_verify_finds_tampering(data_dir):
    import sqlite3
    assert cli(data_dir, "client", "add", "acme").returncode == 0
    assert cli(data_dir, "client", "add", "beta").returncode == 0
    assert cli(data_dir, "user", "add", "alice", "--client", "acme", "--no-totp").returncode == 0
    events = json.loads(cli(data_dir, "audit", "list", "--json").stdout)
    assert [(e["actor"], e["protocol"], e["action"], e["path"]) for e in events][:2] == [
        (me(), "cli", "client-add", "/acme"), (me(), "cli", "client-add", "/beta")]
    assert all(e["prev_hash"] == before["hash"] for before, e in zip(events, events[1:]))
    acme = json.loads(cli(data_dir, "audit", "list", "--client", "acme", "--json").stdout)
    assert acme and all(e["path"].startswith("/acme") for e in acme)
    newest = json.loads(cli(data_dir, "audit", "list", "--limit", "1", "--json").stdout)
    assert newest == events[-1:]
    assert json.loads(cli(data_dir, "audit", "list", "--user", "alice", "--json").stdout) == []
    r = cli(data_dir, "audit", "list", "--user", "nobody", "--json")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "no user nobody" in r.stderr
    assert json.loads(cli(data_dir, "audit", "list", "--since", "2000-01-01", "--json").stdout) \
        == events
    r = cli(data_dir, "audit", "verify")
    assert r.returncode == 0 and f"{len(events)} events" in r.stdout, r.stderr
    with sqlite3.connect(data_dir / "strongroom.db") as db:
        db.execute("UPDATE audit_events SET detail = 'forged' WHERE id = ?", (events[1]["id"],))
    r = cli(data_dir, "audit", "verify")
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert f"event {events[1]['id']} was altered" in r.stderr


def test_audit_names_the_admin_under_sudo(data_dir):
    if os.getuid() != 0:
        pytest.skip("SUDO_USER counts only for commands run as root")
    assert cli(data_dir, "client", "add", "acme", env={"SUDO_USER": "carol"}).returncode == 0
    events = json.loads(cli(data_dir, "audit", "list", "--action", "client-add", "--json").stdout)
    assert [e["actor"] for e in events] == ["admin:carol"]


def _sans(data_dir) -> list[str]:
    from cryptography import x509
    cert = x509.load_pem_x509_certificate((data_dir / "tls" / "cert.pem").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(n.value) for n in sans]


def test_init_again_applies_the_options_given(data_dir):
    key = (data_dir / "master.key").read_bytes()
    r = cli(data_dir, "init", "--host", "127.0.0.2", "--public-name", "files.example.org")
    assert r.returncode == 0, r.stderr
    assert "set [server] host = '127.0.0.2' (was '127.0.0.1')" in r.stdout
    assert "new self-signed certificate" in r.stdout
    conf = (data_dir / "strongroom.toml").read_text()
    assert 'host = "127.0.0.2"' in conf and 'public_name = "files.example.org"' in conf
    assert "# Address both servers listen on." in conf          # comments kept
    assert "files.example.org" in _sans(data_dir) and "127.0.0.2" in _sans(data_dir)
    assert (data_dir / "master.key").read_bytes() == key
    again = json.loads(cli(data_dir, "init", "--json").stdout)   # nothing given: nothing changes
    assert again["changed"] == {} and again["certificate"] is None
    assert (data_dir / "strongroom.toml").read_text() == conf


def test_init_again_keeps_an_admins_own_certificate(data_dir):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=own",
                    "-keyout", str(data_dir / "tls" / "key.pem"),
                    "-out", str(data_dir / "tls" / "cert.pem")], check=True, capture_output=True)
    own = (data_dir / "tls" / "cert.pem").read_bytes()
    r = cli(data_dir, "init", "--public-name", "files.example.org")
    assert r.returncode == 0 and "kept your certificate" in r.stdout, r.stdout + r.stderr
    assert (data_dir / "tls" / "cert.pem").read_bytes() == own


def test_init_refuses_a_bad_option_and_changes_nothing(data_dir, tmp_path):
    conf = (data_dir / "strongroom.toml").read_text()
    r = cli(data_dir, "init", "--webdav-port", "99999")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "webdav_port" in r.stderr
    assert (data_dir / "strongroom.toml").read_text() == conf
    fresh = tmp_path / "fresh"
    assert cli(fresh, "init", "--sftp-port", "70000").returncode == 1
    assert not (fresh / "strongroom.toml").exists()


def test_init_says_a_running_daemon_needs_a_restart(data_dir):
    from strongroom.appliance.runlock import RunLock
    lock = RunLock(data_dir).acquire("test")     # as `serve` holds it
    try:
        out = json.loads(cli(data_dir, "init", "--sftp-port", "2299", "--json").stdout)
    finally:
        lock.release()
    assert out["changed"] == {"[server] sftp_port": [0, 2299]} and out["restart_needed"]


@pytest.mark.parametrize("args", [("status",), ("audit", "list"), ("client", "list")])
def test_a_reader_that_goes_away_ends_the_command_quietly(data_dir, args):
    """`strongroom audit list | head -1`: no traceback, no 'unexpected BrokenPipeError'."""
    r, w = os.pipe()
    os.close(r)                  # the reader is gone before the command writes a byte
    try:
        p = subprocess.run([sys.executable, "-m", "strongroom.appliance.cli", *args, "--data-dir",
                            str(data_dir)], stdout=w, stderr=subprocess.PIPE, text=True,
                           timeout=120)
    finally:
        os.close(w)
    assert p.stderr == "" and p.returncode in (0, 1, 141), p.stderr
