"""The recovery key against the real CLI and daemon (SQLite): `keys export-recovery`, the
master key lost (the daemon refuses to start, one line), `keys import-recovery` puts it
back and the daemon serves the same bytes over WebDAV (curl) and SFTP (OpenSSH); a wrong
passphrase or another appliance's recovery file changes nothing; `restore --recovery`
builds an appliance from a backup that serves the tree and whose `audit verify` passes;
bad input is one line and a non-zero exit."""
import json
import os
import stat

import pytest

from strongroom.appliance.keysource import key_id
from tests.support.daemon import Daemon, running_daemon, sftp_quote as q

# over a minute in a full run: handed out first (tests/conftest.py)
pytestmark = pytest.mark.slow

PASSPHRASE = "correct horse \u2013 battery st\u00e4ple"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "recovery")


@pytest.fixture(scope="module")
def files(daemon) -> dict[str, bytes]:
    """/dav.bin put over WebDAV, /sftp.bin over SFTP, as alice (client acme)."""
    dav, over_sftp = daemon.path("dav.bin"), daemon.path("sftp.bin")
    dav.write_bytes(os.urandom(300_000))
    over_sftp.write_bytes(os.urandom(200_000))
    assert daemon.request("alice", "PUT", "/dav.bin", "-T", dav).status == 201
    assert daemon.run_sftp("alice", [f"put {q(over_sftp)} /sftp.bin"]).returncode == 0
    return {"/dav.bin": dav.read_bytes(), "/sftp.bin": over_sftp.read_bytes()}


@pytest.fixture(scope="module")
def secret(tmp_path_factory):
    """The recovery passphrase file (and a wrong one beside it)."""
    root = tmp_path_factory.mktemp("passphrases")
    (root / "right").write_text(PASSPHRASE + "\n", "utf-8")
    (root / "wrong").write_text(PASSPHRASE + "!\n", "utf-8")
    return root


@pytest.fixture(scope="module")
def exported(daemon, files, secret, tmp_path_factory):
    """The recovery file of `daemon`, and the export's output."""
    to = tmp_path_factory.mktemp("safe") / "strongroom-recovery.key"
    out = daemon.cli("keys", "export-recovery", "--to", to, "--passphrase-file",
                     secret / "right", input=b"")
    assert out.returncode == 0, out.stderr
    return to, out.stdout


def one_line(out, needle: str) -> None:
    assert out.returncode != 0, out.stdout
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert needle in out.stderr, out.stderr


def serves(d: Daemon, files: dict[str, bytes]) -> None:
    """Every file reads back byte-exact over WebDAV and over SFTP."""
    for path, data in files.items():
        got = d.request("alice", "GET", path)
        assert got.status == 200 and got.body == data, (path, got.status)
        local = d.path("got.bin")
        assert d.run_sftp("alice", [f"get {q(path)} {q(local)}"]).returncode == 0
        assert local.read_bytes() == data, path


def test_export_says_the_key_id_and_writes_a_private_new_file(daemon, exported, secret):
    to, stdout = exported
    kid = key_id((daemon.data_dir / "master.key").read_bytes())
    assert f"wrote the recovery key of master key {kid} to {to}" in stdout
    assert "the passphrase is not stored anywhere" in stdout
    assert stat.S_IMODE(to.stat().st_mode) == 0o600
    text = to.read_text()
    assert json.loads(text)["key_id"] == kid and PASSPHRASE not in text
    assert not [p for p in to.parent.iterdir() if p != to]       # no temp file left
    again = daemon.cli("keys", "export-recovery", "--to", to, "--passphrase-file",
                       secret / "right", input=b"")
    one_line(again, "already exists: a recovery file is never overwritten")
    assert to.read_text() == text
    second = to.with_name("second.key")
    out = daemon.cli("keys", "export-recovery", "--to", second, "--passphrase-file",
                     secret / "right", "--json", input=b"")
    assert out.returncode == 0 and json.loads(out.stdout)["key_id"] == kid, out.stderr
    events = daemon.cli("audit", "list", "--json", check=True).stdout
    assert f"key_id={kid}" in events and "keys-export-recovery" in events
    assert str(to) not in events and PASSPHRASE not in events


@pytest.mark.parametrize("args, needle", [
    ((), "no terminal to ask the recovery passphrase on: give --passphrase-file FILE"),
    (("--passphrase-file", "short"), "at least 12 characters"),
    (("--passphrase-file", "missing"), "cannot read the passphrase file"),
])
def test_export_bad_input_is_one_line_and_writes_nothing(daemon, tmp_path, args, needle):
    (tmp_path / "short").write_text("too short\n")
    args = tuple(str(tmp_path / a) if a in ("short", "missing") else a for a in args)
    to = tmp_path / "rec.key"
    one_line(daemon.cli("keys", "export-recovery", "--to", to, *args, input=b""), needle)
    assert not to.exists()


def test_lost_master_key_comes_back_from_the_recovery_file(daemon, files, exported, secret):
    to, _ = exported
    key_file = daemon.data_dir / "master.key"
    key = key_file.read_bytes()
    wrong = daemon.cli("keys", "import-recovery", to, "--passphrase-file", secret / "wrong")
    one_line(wrong, "wrong passphrase")
    daemon.stop()
    key_file.unlink()
    refused = daemon.cli("serve", timeout=60)
    one_line(refused, "master.key does not exist")
    wrong = daemon.cli("keys", "import-recovery", to, "--passphrase-file", secret / "wrong")
    one_line(wrong, f"recovery file {to}: wrong passphrase")
    assert not key_file.exists()
    out = daemon.cli("keys", "import-recovery", to, "--passphrase-file", secret / "right")
    assert out.returncode == 0, out.stderr
    assert f"master key {key_id(key)} put in the key source (file {key_file}; it opens " \
        "all 2 client keys)" in out.stdout
    assert key_file.read_bytes() == key and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    daemon.start()
    serves(daemon, files)
    before = key_file.stat().st_mtime_ns
    same = daemon.cli("keys", "import-recovery", to, "--passphrase-file", secret / "right",
                      "--json")
    assert same.returncode == 0 and json.loads(same.stdout)["changed"] is False, same.stderr
    assert key_file.stat().st_mtime_ns == before
    events = daemon.cli("audit", "list", "--json", check=True).stdout
    assert "keys-import-recovery" in events
    verdict = daemon.cli("audit", "verify")
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr


def test_wrong_passphrase_leaves_the_key_file_untouched(daemon, exported, secret):
    to, _ = exported
    key_file = daemon.data_dir / "master.key"
    key, before = key_file.read_bytes(), key_file.stat().st_mtime_ns
    out = daemon.cli("keys", "import-recovery", to, "--passphrase-file", secret / "wrong")
    one_line(out, "wrong passphrase, or the sealed key file was changed")
    assert key_file.read_bytes() == key and key_file.stat().st_mtime_ns == before


def test_another_appliances_key_is_refused(daemon, exported, secret, tmp_path):
    to, _ = exported
    other = Daemon(tmp_path / "other")
    other.provision()
    key_file = other.data_dir / "master.key"
    key = key_file.read_bytes()
    out = other.cli("keys", "import-recovery", to, "--passphrase-file", secret / "right")
    one_line(out, "holds another key")
    assert key_file.read_bytes() == key
    key_file.unlink()           # lost, and the recovery file is not this appliance's
    out = other.cli("keys", "import-recovery", to, "--passphrase-file", secret / "right")
    one_line(out, "does not open this appliance's client keys")
    assert not key_file.exists()


@pytest.mark.parametrize("content, needle", [
    (b"", "not a Strongroom sealed key file"),
    (bytes(range(40, 72)), "not a Strongroom sealed key file"),   # fixed: same ids on every worker
])
def test_garbage_recovery_file_is_one_line(daemon, secret, tmp_path, content, needle):
    bad = tmp_path / "bad.key"
    bad.write_bytes(content)
    one_line(daemon.cli("keys", "import-recovery", bad, "--passphrase-file",
                        secret / "right"), needle)
    one_line(daemon.cli("keys", "import-recovery", tmp_path / "none",
                        "--passphrase-file", secret / "right"),
             "cannot read the recovery file")


def test_restore_with_the_recovery_key_serves_the_tree(daemon, files, exported, secret,
                                                       tmp_path):
    to, _ = exported
    dest = tmp_path / "backup"
    assert daemon.cli("backup", "create", dest).returncode == 0
    r = Daemon(tmp_path / "restored")
    wrong = r.cli("restore", dest, "--recovery", to, "--passphrase-file", secret / "wrong")
    one_line(wrong, "wrong passphrase")
    assert not r.data_dir.exists()
    out = r.cli("restore", dest, "--recovery", to, "--passphrase-file", secret / "right")
    assert out.returncode == 0, out.stderr
    assert (r.data_dir / "master.key").read_bytes() == \
        (daemon.data_dir / "master.key").read_bytes()
    r.users = daemon.users
    r.set_options("server", webdav_port=r.webdav_port, sftp_port=r.sftp_port)
    r.start()
    try:
        serves(r, files)
    finally:
        r.stop()
    verdict = r.cli("audit", "verify")
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr


@pytest.mark.parametrize("which", ["both", "neither"])
def test_restore_needs_exactly_one_key(daemon, exported, tmp_path, which):
    to, _ = exported
    given = {"both": ("--master-key", daemon.data_dir / "master.key", "--recovery", to),
             "neither": ()}[which]
    r = Daemon(tmp_path / "r")
    out = r.cli("restore", tmp_path, *given)
    one_line(out, "give exactly one of --master-key FILE and --recovery FILE")
    assert not r.data_dir.exists()


def test_import_to_a_key_file_leaves_the_source_alone(daemon, exported, secret, tmp_path):
    """--key-to: the checked key goes to a new 0600 file (to be sealed into a systemd
    credential by the admin); the key source is not touched; never over a file."""
    to, _ = exported
    master = (daemon.data_dir / "master.key").read_bytes()
    out = daemon.cli("keys", "import-recovery", to, "--passphrase-file", secret / "right",
                     "--key-to", tmp_path / "key.out", input=b"")
    assert out.returncode == 0, out.stderr
    assert f"written to {tmp_path / 'key.out'}" in out.stdout
    assert (tmp_path / "key.out").read_bytes() == master
    assert stat.S_IMODE((tmp_path / "key.out").stat().st_mode) == 0o600
    assert (daemon.data_dir / "master.key").read_bytes() == master
    again = daemon.cli("keys", "import-recovery", to, "--passphrase-file", secret / "right",
                       "--key-to", tmp_path / "key.out", input=b"")
    one_line(again, "exists")
