"""Where the master key comes from, against the real `strongroom serve`: a missing key
file, a missing systemd credential (variable unset; file missing) and a wrong
passphrase stop the start with one line, no traceback and no port bound; a credential
in $CREDENTIALS_DIRECTORY (systemd's interface) serves; a key sealed by a passphrase
starts the daemon locked until `strongroom unlock` (a wrong passphrase is refused and
it stays locked; the right one makes curl and OpenSSH sftp work); the CLI takes
--passphrase-file; `init --key-outside` leaves no key in the data directory."""
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.daemon import (HOST, START_TIMEOUT, TIMEOUT, Daemon, need, one_line,
                                  sftp_quote)

# over a minute in a full run: handed out first (tests/conftest.py)
pytestmark = pytest.mark.slow

CREDENTIAL = "strongroom-master"


def serve(d: Daemon, *args, env=None) -> subprocess.CompletedProcess:
    """`strongroom serve` that is expected to give up at once."""
    return subprocess.run(["strongroom", "serve", "--data-dir", str(d.data_dir), *map(str, args)],
                          capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL)


def bound(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


def ports_closed(d: Daemon) -> bool:
    return not bound(d.webdav_port) and not bound(d.sftp_port)


def env_without(*names: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in names}
    return {**env, **extra}


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Daemon:
    """A provisioned data directory with today's key file, not running."""
    need("strongroom")
    d = Daemon(tmp_path_factory.mktemp("keysource-plain"))
    d.provision()
    return d


def test_missing_key_file_is_one_line(plain):
    key = plain.data_dir / "master.key"
    aside = key.with_name("aside.key")
    key.rename(aside)
    try:
        line = one_line(serve(plain))
    finally:
        aside.rename(key)
    assert f"master key file {key} does not exist" in line
    assert ports_closed(plain)


def test_short_key_file_is_one_line(plain):
    key = plain.data_dir / "master.key"
    original = key.read_bytes()
    try:
        key.write_bytes(original[:20])
        assert "exactly 32 bytes, it holds 20" in one_line(serve(plain))
    finally:
        key.write_bytes(original)
    assert ports_closed(plain)


@pytest.fixture
def credential(plain, tmp_path):
    """The plain daemon's key moved into a credentials directory (0700), as systemd
    gives it to the unit; [keys] names the credential. Restored afterwards."""
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    key = plain.data_dir / "master.key"
    key.rename(creds / CREDENTIAL)
    plain.set_options("keys", master_key_source=f"systemd-credential:{CREDENTIAL}")
    yield creds
    (creds / CREDENTIAL).rename(key)
    plain.set_options("keys", master_key_source="")


def test_missing_credential_is_one_line(plain, credential, tmp_path):
    unset = one_line(serve(plain, env=env_without("CREDENTIALS_DIRECTORY")))
    assert "$CREDENTIALS_DIRECTORY is not set" in unset and "systemd-run" in unset
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    missing = one_line(serve(plain, env=env_without(CREDENTIALS_DIRECTORY=str(empty))))
    assert f"no credential {CREDENTIAL} in $CREDENTIALS_DIRECTORY ({empty})" in missing
    assert ports_closed(plain)
    assert not (plain.data_dir / "master.key").exists()


def test_credential_source_serves(plain, credential, monkeypatch):
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credential))
    plain.start()
    try:
        r = plain.request("alice", "PROPFIND", "/", "-H", "Depth: 1")
        assert r.status == 207, r
        status = json.loads(plain.cli("status", "--json").stdout)
        assert status["master_key"]["source"] == f"systemd credential {CREDENTIAL}"
        assert status["master_key"]["matches_database"] is True
    finally:
        plain.stop()


# -- a key sealed by a passphrase -----------------------------------------------------

PASSPHRASE = "e2e correct horse battery"


@pytest.fixture(scope="module")
def sealed(tmp_path_factory) -> Daemon:
    """A data directory made with `init --key-source passphrase`, provisioned with the
    passphrase given through $STRONGROOM_PASSPHRASE_FILE; not running."""
    need("strongroom")
    d = Daemon(tmp_path_factory.mktemp("keysource-sealed"))
    d.passphrase_file = d.root / "passphrase"
    d.passphrase_file.write_text(PASSPHRASE + "\n")
    d.wrong_file = d.root / "wrong"
    d.wrong_file.write_text("not the passphrase\n")
    made = d.cli("init", "--key-source", "passphrase", "--passphrase-file", d.passphrase_file,
                 "--host", HOST, "--webdav-port", d.webdav_port, "--sftp-port", d.sftp_port)
    assert made.returncode == 0, made.stderr
    assert not (d.data_dir / "master.key").exists()
    assert (d.data_dir / "master.key.sealed").exists()
    os.environ["STRONGROOM_PASSPHRASE_FILE"] = str(d.passphrase_file)
    try:
        d.provision()
    finally:
        del os.environ["STRONGROOM_PASSPHRASE_FILE"]
    yield d
    if d.running:
        d.stop()


def start_locked(d: Daemon) -> None:
    """Start `strongroom serve` without the passphrase; return once it says it is locked."""
    d._log_offset = d.log_path.stat().st_size if d.log_path.exists() else 0
    with open(d.log_path, "ab") as log:
        d.proc = subprocess.Popen(
            ["strongroom", "serve", "--data-dir", str(d.data_dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            env=env_without("STRONGROOM_PASSPHRASE_FILE"))
    wait_for(d, "locked: run `strongroom unlock`")


def wait_for(d: Daemon, text: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if text in d.log_since_start():
            return
        if d.proc.poll() is not None:
            pytest.fail(f"daemon exited with {d.proc.returncode}:\n{d.log_since_start()}")
        time.sleep(0.05)
    pytest.fail(f"no {text!r} within {START_TIMEOUT} s:\n{d.log_since_start()}")


def unlock(d: Daemon, passphrase_file: Path) -> subprocess.CompletedProcess:
    return d.cli("unlock", "--passphrase-file", passphrase_file)


def test_wrong_passphrase_file_is_one_line(sealed):
    line = one_line(serve(sealed, "--passphrase-file", sealed.wrong_file))
    assert line.endswith(f"wrong passphrase for the master key "
                         f"({sealed.data_dir / 'master.key.sealed'})")
    assert ports_closed(sealed)


def test_locked_daemon_serves_only_after_unlock(sealed):
    start_locked(sealed)
    assert ports_closed(sealed)
    sock = sealed.data_dir / "run" / "unlock.sock"
    assert oct(sock.stat().st_mode & 0o777) == "0o600"
    status = json.loads(sealed.cli("status", "--json").stdout)
    assert status["daemon"]["locked"] is True and "locked" in status["daemon"]["summary"]
    assert status["master_key"]["ok"] is None
    wrong = one_line(unlock(sealed, sealed.wrong_file))
    assert "wrong passphrase for the master key" in wrong
    assert sealed.running and ports_closed(sealed) and sock.exists()
    right = unlock(sealed, sealed.passphrase_file)
    assert right.returncode == 0, right.stderr
    wait_for(sealed, "serving WebDAV")
    assert not sock.exists()
    r = sealed.request("alice", "PROPFIND", "/", "-H", "Depth: 1")
    assert r.status == 207, r
    local = sealed.path("up.bin")
    local.write_bytes(os.urandom(100_000))
    put = sealed.run_sftp("alice", [f"put {sftp_quote(local)} /up.bin", "ls /"])
    assert put.returncode == 0, put.stderr
    assert sealed.request("alice", "GET", "/up.bin").body == local.read_bytes()
    assert "locked" not in sealed.cli("status").stdout
    assert sealed.stop() == 0


def test_sigterm_while_locked_exits_cleanly(sealed):
    start_locked(sealed)
    assert sealed.stop() == 0
    assert "stopped while locked" in sealed.log_since_start()
    assert not (sealed.data_dir / "run" / "unlock.sock").exists()
    assert ports_closed(sealed)


def test_unlock_without_a_locked_daemon_or_a_passphrase(sealed):
    assert "no daemon is waiting locked" in one_line(unlock(sealed, sealed.passphrase_file))
    start_locked(sealed)
    try:
        proc = subprocess.run(["strongroom", "unlock", "--data-dir", str(sealed.data_dir)],
                              capture_output=True, text=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL,
                              env=env_without("STRONGROOM_PASSPHRASE_FILE"))
        assert "--passphrase-file" in one_line(proc)
    finally:
        sealed.stop()


def test_cli_commands_take_the_passphrase_file(sealed):
    bare = subprocess.run(["strongroom", "client", "add", "gamma", "--data-dir",
                           str(sealed.data_dir)], capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                          env=env_without("STRONGROOM_PASSPHRASE_FILE"))
    line = one_line(bare)
    assert "--passphrase-file" in line and "STRONGROOM_PASSPHRASE_FILE" in line
    added = sealed.cli("--passphrase-file", sealed.passphrase_file, "client", "add", "gamma")
    assert added.returncode == 0, added.stderr
    wrong = sealed.cli("--passphrase-file", sealed.wrong_file, "client", "list")
    assert "wrong passphrase for the master key" in one_line(wrong)
    # commands that need no key never ask
    assert "master key" in sealed.cli("status").stdout
    assert sealed.cli("client", "add", "--help").returncode == 0


# -- init --key-outside ---------------------------------------------------------------

def test_init_key_outside_leaves_no_key_in_the_data_directory(tmp_path):
    d = Daemon(tmp_path / "outside")
    key = tmp_path / "etc" / "master.key"
    made = d.cli("init", "--key-outside", key, "--host", HOST, "--webdav-port", d.webdav_port,
                 "--sftp-port", d.sftp_port)
    assert made.returncode == 0, made.stderr
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    secret = key.read_bytes()
    for path in d.data_dir.rglob("*"):
        assert not path.is_file() or secret not in path.read_bytes(), path
    assert not (d.data_dir / "master.key").exists()
    assert f'master_key_source = "file:{key}"' in (d.data_dir / "strongroom.toml").read_text()
    again = Daemon(tmp_path / "again")
    refused = again.cli("init", "--key-outside", key)
    assert f"{key} exists" in one_line(refused)
    assert key.read_bytes() == secret and not again.data_dir.exists()
    status = json.loads(d.cli("status", "--json").stdout)
    assert status["master_key"]["ok"] is True and status["master_key"]["file"] == str(key)


def test_a_rotation_by_the_cli_reaches_a_daemon_unlocked_by_passphrase(sealed):
    """`keys rotate-master` in another process stores the new key sealed by the same
    passphrase and drops the next-key row; the running daemon, which had not needed
    the client's key yet (nothing remembered), must read the new sealed file: it
    answered 500 to every request until a restart, its source giving the key it had
    opened at start."""
    start_locked(sealed)
    try:
        assert unlock(sealed, sealed.passphrase_file).returncode == 0
        wait_for(sealed, "serving WebDAV")
        rotated = sealed.cli("--passphrase-file", sealed.passphrase_file, "keys",
                             "rotate-master")
        assert rotated.returncode == 0, rotated.stderr
        data = os.urandom(50_000)
        local = sealed.path("after.bin")
        local.write_bytes(data)
        assert sealed.request("alice", "PUT", "/after.bin", "-T", local).status in (201, 204)
        assert sealed.request("alice", "GET", "/after.bin").body == data
        assert "UnknownKey" not in sealed.log_since_start()
    finally:
        sealed.stop()


def test_backups_of_a_passphrase_appliance_verify_and_restore(sealed, tmp_path):
    """`backup verify --data-dir` opens the key through the appliance's key source (it
    read [storage] master_key_file, absent here); `restore` puts the key in NEW and says
    the backup's source was not carried over (App could not open NEW: its config named
    a sealed file that a restore does not make)."""
    pp = ("--passphrase-file", sealed.passphrase_file)
    dest, new, rec = tmp_path / "backup", tmp_path / "new", tmp_path / "recovery.key"
    assert sealed.cli(*pp, "backup", "create", dest).returncode == 0
    verified = sealed.cli(*pp, "backup", "verify", dest, "--data-dir", sealed.data_dir)
    assert verified.returncode == 0, verified.stderr
    assert "every chunk authenticated" in verified.stdout
    (tmp_path / "rp").write_text("a recovery passphrase\n")
    exported = sealed.cli(*pp, "keys", "export-recovery", "--to", rec,
                          "--passphrase-file", tmp_path / "rp")
    assert exported.returncode == 0, exported.stderr
    restored = subprocess.run(["strongroom", "restore", str(dest), "--data-dir", str(new),
                               "--recovery", str(rec), "--passphrase-file",
                               str(tmp_path / "rp")], capture_output=True, text=True,
                              timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert restored.returncode == 0, restored.stderr
    assert "master key source (passphrase) is not carried over" in restored.stdout
    listed = subprocess.run(["strongroom", "client", "list", "--data-dir", str(new)],
                            capture_output=True, text=True, timeout=TIMEOUT,
                            stdin=subprocess.DEVNULL,
                            env=env_without("STRONGROOM_PASSPHRASE_FILE"))
    assert listed.returncode == 0 and "acme" in listed.stdout, listed.stderr


# -- keys move ------------------------------------------------------------------------

def test_keys_move_between_sources(tmp_path_factory, tmp_path):
    """`keys move`: off the data disk to a file, then sealed by a passphrase, a new
    passphrase, a credential (the key handed to a file for systemd-creds); refusals
    change nothing; the daemon serves from each place after a restart."""
    need("strongroom")
    d = Daemon(tmp_path_factory.mktemp("keysource-move"))
    d.provision()
    key = (d.data_dir / "master.key").read_bytes()
    outside, new_pp, newer_pp = tmp_path / "etc" / "master.key", tmp_path / "pp1", tmp_path / "pp2"
    outside.parent.mkdir()
    new_pp.write_text("first passphrase\n")
    newer_pp.write_text("second passphrase\n")
    moved = d.cli("keys", "move", f"file:{outside}", check=True)
    assert "wiped and removed" in moved.stdout
    assert outside.read_bytes() == key and not (d.data_dir / "master.key").exists()
    assert f'master_key_source = "file:{outside}"' in (d.data_dir / "strongroom.toml").read_text()
    d.start()
    data = os.urandom(20_000)
    (tmp_path / "x.bin").write_bytes(data)
    assert d.request("alice", "PUT", "/x.bin", "-T", tmp_path / "x.bin").status == 201
    d.stop()
    # the same place again, or a file that exists: refused, nothing changed
    assert "already in" in one_line(d.cli("keys", "move", f"file:{outside}"))
    (tmp_path / "taken").write_bytes(b"x")
    assert "exists" in one_line(d.cli("keys", "move", f"file:{tmp_path / 'taken'}"))
    assert outside.read_bytes() == key
    d.cli("keys", "move", "passphrase", "--new-passphrase-file", new_pp, check=True)
    assert not outside.exists() and (d.data_dir / "master.key.sealed").exists()
    assert "wrong passphrase" in one_line(d.cli("--passphrase-file", newer_pp, "client", "list"))
    d.cli("--passphrase-file", new_pp, "keys", "move", "passphrase", "--new-passphrase-file",
          newer_pp, check=True)
    assert "wrong passphrase" in one_line(d.cli("--passphrase-file", new_pp, "client", "list"))
    served = serve_unlocked(d, newer_pp)
    assert served.request("alice", "GET", "/x.bin").body == data
    d.stop()
    refused = d.cli("--passphrase-file", newer_pp, "keys", "move", "systemd-credential:sr")
    assert "--key-to FILE" in one_line(refused)
    d.cli("--passphrase-file", newer_pp, "keys", "move", "systemd-credential:sr", "--key-to",
          tmp_path / "for-creds", check=True)
    assert (tmp_path / "for-creds").read_bytes() == key
    assert not (d.data_dir / "master.key.sealed").exists()
    audit = d.cli("keys", "status", check=False)
    assert "CREDENTIALS_DIRECTORY" in one_line(audit)


def serve_unlocked(d: Daemon, passphrase_file: Path) -> Daemon:
    """`d` started with `serve --passphrase-file` (through the environment)."""
    os.environ["STRONGROOM_PASSPHRASE_FILE"] = str(passphrase_file)
    try:
        d.start()
    finally:
        del os.environ["STRONGROOM_PASSPHRASE_FILE"]
    return d
