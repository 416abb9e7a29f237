"""Offboarding by crypto-shredding against the real daemon (issue 14), on SQLite and
on PostgreSQL: acme's files uploaded over WebDAV (curl) and SFTP (OpenSSH sftp), the
blobs directory and the master key copied aside, then `strongroom client remove acme
--shred --yes`. Afterwards no blob of acme's is left; the copies are ciphertext that
acme's old wrapped key still opens (so the test can tell), yet no key left in the
database unwraps any of its data keys; beta's files read back byte-exact; `audit
verify` passes; acme's users log in over neither protocol, and a live SFTP session
of theirs fails without a traceback in the daemon's log. The refusals (no --yes off a
terminal, files without --shred, an unknown client) are one line and change nothing; on
a terminal (a pty) the client's name is typed to confirm."""
import io
import os
import pty
import select
import shutil
import subprocess
import time

import paramiko
import pytest
from sqlalchemy import create_engine, inspect, text

from strongroom import config as configmod
from strongroom.appliance.service.login import RECHECK_SECONDS
from strongroom.providers.errors import CorruptData
from strongroom.providers.keys import KeyRing, load_master_key
from strongroom.providers.local import LocalProvider
from tests.support import postgres
from tests.support.daemon import HOST, running_daemon, sftp_quote as q

pytestmark = pytest.mark.slow     # a long module: started first (tests/conftest.py)

WITHIN = 10     # seconds: live sessions notice a removed user well within this


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def daemon(request, tmp_path_factory):
    if request.param == "sqlite":
        yield from running_daemon(tmp_path_factory, "e2e-shred")
        return
    with postgres.fresh_database() as url:
        yield from running_daemon(tmp_path_factory, "e2e-shred-pg", database_url=url)


def _engine(daemon):
    url = configmod.load(daemon.data_dir).database.url
    return create_engine(url or f"sqlite:///{daemon.data_dir / 'strongroom.db'}")


def _acme_rows(daemon):
    """(acme's wrapped client key, [(blob id, wrapped data key, size, holes)])."""
    engine = _engine(daemon)
    try:
        with engine.connect() as c:
            cid, wrapped = c.execute(text("SELECT id, wrapped_key FROM clients "
                                          "WHERE name = 'acme'")).one()
            versions = c.execute(text(
                "SELECT blob_id, wrapped_key, size, holes FROM versions WHERE node_id IN "
                "(SELECT id FROM nodes WHERE client_id = :c)"), {"c": cid}).all()
        return bytes(wrapped), [(b, bytes(k), s, h) for b, k, s, h in versions]
    finally:
        engine.dispose()


def _binary_values(daemon) -> list[bytes]:
    """Every value of every binary column of every table: all the keys that remain."""
    engine = _engine(daemon)
    out = []
    try:
        with engine.connect() as c:
            schema = inspect(c)
            for table in schema.get_table_names():
                for col in schema.get_columns(table):
                    kind = str(col["type"]).upper()
                    if "BLOB" in kind or "BYTEA" in kind:
                        out += [bytes(v) for v in c.execute(text(
                            f"SELECT {col['name']} FROM {table}")).scalars() if v is not None]
    finally:
        engine.dispose()
    return out


def _upload(daemon, tmp, login, path, data, over):
    local = tmp / f"up-{os.urandom(4).hex()}"
    local.write_bytes(data)
    if over == "webdav":
        r = daemon.curl(login, "-T", local, daemon.url(path), "-w", "%{http_code}")
        assert r.returncode == 0 and r.stdout.decode().endswith(("201", "204")), r
    else:
        r = daemon.run_sftp(login, [f"put {q(local)} {q(path)}"])
        assert r.returncode == 0, r.stderr


def _open(provider, keyring, client_key, row) -> bytes:
    blob_id, wrapped_data_key, size, holes = row
    reader = provider.open_blob(blob_id, keyring.data_key(client_key, wrapped_data_key),
                                size, holes)
    try:
        return reader.read(0, size)
    finally:
        reader.close()


def test_shred_destroys_acme_and_leaves_beta(daemon, tmp_path):
    alice = daemon.users["alice"]
    acme_files = {"/report.pdf": os.urandom(300_000), "/notes.txt": b"version 2 " * 100}
    _upload(daemon, tmp_path, "alice", "/report.pdf", acme_files["/report.pdf"], "webdav")
    _upload(daemon, tmp_path, "alice", "/notes.txt", b"version 1", "sftp")
    _upload(daemon, tmp_path, "alice", "/notes.txt", acme_files["/notes.txt"], "webdav")
    beta_data = os.urandom(200_000)
    _upload(daemon, tmp_path, "bob", "/keep.bin", beta_data, "sftp")
    acme_key, acme_versions = _acme_rows(daemon)
    assert len(acme_versions) == 3
    aside = tmp_path / "aside"
    shutil.copytree(daemon.blob_dir, aside / "blobs", ignore=shutil.ignore_patterns(".staging"))
    shutil.copy2(daemon.data_dir / "master.key", aside / "master.key")
    keyring = KeyRing(load_master_key(aside / "master.key"))
    copies = LocalProvider(aside / "blobs", configmod.load(daemon.data_dir).storage.chunk_size)
    # the copies are acme's ciphertext: its key (which an earlier backup would hold) opens them
    opened = {_open(copies, keyring, acme_key, row) for row in acme_versions}
    assert set(acme_files.values()) | {b"version 1"} == opened
    transport = paramiko.Transport((HOST, daemon.sftp_port))
    transport.connect(username=alice.login, password=alice.password)
    live = paramiko.SFTPClient.from_transport(transport)
    assert "report.pdf" in live.listdir("/")

    _refusals_change_nothing(daemon)
    r = daemon.cli("client", "remove", "acme", "--shred", "--yes")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("client acme removed: 2 files, 3 versions")

    with pytest.raises((OSError, EOFError, paramiko.SSHException)):
        live.putfo(io.BytesIO(b"written after the shred"), "/after.txt")
    # a WebDAV password login the daemon remembers is re-read after RECHECK_SECONDS
    # (README): until then the removed tree answers nothing but refusals, then 401
    within = daemon.request("alice", "PUT", "/after.txt", "--data-binary", "x").status
    assert within in (401, 403, 404, 409), within
    time.sleep(RECHECK_SECONDS)
    assert daemon.request("alice", "PUT", "/after.txt", "--data-binary", "x").status == 401
    left = set(daemon.blob_dir.glob("??/*"))
    assert not {p.name for p in left} & {row[0] for row in acme_versions}
    remaining = _binary_values(daemon)
    assert acme_key not in remaining
    for path in daemon.data_dir.glob("strongroom.db*"):   # SQLite: not in free space or log
        assert acme_key not in path.read_bytes(), path.name
    for row in acme_versions:           # nothing that remains unwraps any of its data keys
        for key in remaining:
            with pytest.raises((CorruptData, ValueError)):
                _open(copies, keyring, key, row)
    got = tmp_path / "keep.bin"
    assert daemon.run_sftp("bob", [f"get /keep.bin {q(got)}"]).returncode == 0
    assert got.read_bytes() == beta_data
    assert daemon.request("bob", "GET", "/keep.bin").body == beta_data
    assert daemon.cli("audit", "verify").returncode == 0
    assert daemon.request("alice", "PROPFIND", "/", "-H", "Depth: 1").status == 401
    assert daemon.run_sftp("alice", ["ls /"]).returncode != 0
    assert _live_session_ends(live)
    transport.close()
    assert "Traceback" not in daemon.log_since_start()


def _refusals_change_nothing(daemon):
    before = sorted(_binary_values(daemon))
    for args, says in ((("acme", "--shred"), "add --yes"),
                       (("acme",), "acme still has 2 files"),
                       (("nobody", "--shred", "--yes"), "no client named 'nobody'")):
        r = daemon.cli("client", "remove", *args)
        assert r.returncode != 0 and r.stdout == "", (args, r)
        assert r.stderr.count("\n") == 1 and says in r.stderr, (args, r.stderr)
    assert sorted(_binary_values(daemon)) == before


def _live_session_ends(sftp) -> bool:
    """Whether the removed user's open SFTP session stops answering with its files."""
    deadline = time.monotonic() + WITHIN
    while time.monotonic() < deadline:
        try:
            sftp.listdir("/")
        except (OSError, EOFError, paramiko.SSHException):
            return True
        time.sleep(0.3)
    return False


def _on_terminal(daemon, args, typed: str) -> tuple[int, str]:
    """Run `strongroom ARGS` with a terminal (a pty) as stdin and stderr, type `typed`
    at its prompt; (exit status, what the terminal showed)."""
    main, sub = pty.openpty()
    proc = subprocess.Popen(["strongroom", *args, "--data-dir", str(daemon.data_dir)],
                            stdin=sub, stdout=sub, stderr=sub, close_fds=True)
    os.close(sub)
    shown = b""
    deadline = time.monotonic() + 60
    while b"confirm" not in shown and time.monotonic() < deadline and proc.poll() is None:
        if select.select([main], [], [], 0.5)[0]:
            shown += os.read(main, 4096)
    os.write(main, typed.encode() + b"\n")
    proc.wait(60)
    while select.select([main], [], [], 0.2)[0]:
        try:
            shown += os.read(main, 4096)
        except OSError:        # the terminal closed with the process
            break
    os.close(main)
    return proc.returncode, shown.decode("utf-8", "replace")


def test_on_a_terminal_the_name_is_typed_to_confirm(daemon):
    daemon.cli("client", "add", "gamma", check=True)
    daemon.cli("folder", "add", "/gamma/inbox", check=True)
    status, shown = _on_terminal(daemon, ["client", "remove", "gamma", "--shred"], "gama")
    assert status == 1 and "This destroys client gamma for good" in shown, shown
    assert "not confirmed" in shown and "nothing was removed" in shown
    assert daemon.cli("client", "show", "gamma").returncode == 0
    status, shown = _on_terminal(daemon, ["client", "remove", "gamma", "--shred"], "gamma")
    assert status == 0 and "client gamma removed: 0 files" in shown, shown
    assert daemon.cli("client", "show", "gamma").returncode != 0
