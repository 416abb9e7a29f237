"""SFTP protocol behaviour seen through paramiko's client: extensions, refusals,
uploads that must never become visible half-written."""
import json
import os
import subprocess
import time

import paramiko
import pytest

from tests.support.daemon import HOST


@pytest.fixture
def connect(daemon):
    opened = []

    def _connect(login="alice", password=None):
        user = daemon.users[login]
        t = paramiko.Transport((HOST, daemon.sftp_port))
        t.connect(username=login, password=password or user.password)
        opened.append(t)
        return t, paramiko.SFTPClient.from_transport(t)

    yield _connect
    for t in opened:
        t.close()


def _read(sftp, path):
    with sftp.open(path, "rb") as f:
        return f.read()


def test_limits_extension_answers_256k(connect):
    _, sftp = connect()
    t, msg = sftp._request(paramiko.sftp.CMD_EXTENDED, "limits@openssh.com")
    assert t == paramiko.sftp.CMD_EXTENDED_REPLY
    packet, read, write, handles = (msg.get_int64() for _ in range(4))
    assert packet == 256 * 1024 and read >= 255 * 1024 and write >= 255 * 1024 and handles > 0


def test_a_read_returns_at_most_what_limits_promises(connect):
    _, sftp = connect()
    content = os.urandom(1 << 20)
    sftp.putfo(_bytes(content, 1), "/bigread.bin")
    with sftp.open("/bigread.bin", "rb") as f:
        t, msg = sftp._request(paramiko.sftp.CMD_READ, f.handle, paramiko.sftp.int64(1000),
                               64 << 20)   # the daemon must not hold 64 MiB for this
        assert t == paramiko.sftp.CMD_DATA
        assert msg.get_binary() == content[1000:1000 + 255 * 1024]
        with pytest.raises(EOFError):   # paramiko's client turns SSH_FX_EOF into this
            sftp._request(paramiko.sftp.CMD_READ, f.handle, paramiko.sftp.int64(1 << 20), 100)


@pytest.mark.parametrize("op", [
    lambda s: s.symlink("/a.txt", "/link"),
    lambda s: s.readlink("/a.txt"),
])
def test_links_are_refused(connect, op):
    _, sftp = connect()
    with pytest.raises(IOError):
        op(sftp)
    assert "link" not in sftp.listdir("/")


def test_clients_that_prefer_aes_ctr_get_aes_gcm(daemon):
    """OpenSSH's sftp and PuTTY list AES-CTR before GCM; CTR would add paramiko's
    per-packet HMAC to the daemon's cost (appliance/sftp/server.py)."""
    user = daemon.users["alice"]
    t = paramiko.Transport((HOST, daemon.sftp_port))
    t.get_security_options().ciphers = ("aes128-ctr", "aes256-ctr", "aes128-gcm@openssh.com")
    t.connect(username="alice", password=user.password)
    assert (t.local_cipher, t.remote_cipher) == ("aes128-gcm@openssh.com",) * 2
    t.close()
    t = paramiko.Transport((HOST, daemon.sftp_port))
    t.get_security_options().ciphers = ("aes128-ctr", "aes256-ctr")
    with pytest.raises(paramiko.SSHException):
        t.connect(username="alice", password=user.password)
    t.close()


def test_wrong_password_and_unknown_user_fail_alike(daemon):
    errors = []
    for login, password in (("alice", "wrong-password-1"), ("nobody", "wrong-password-1")):
        t = paramiko.Transport((HOST, daemon.sftp_port))
        with pytest.raises(paramiko.AuthenticationException) as e:
            t.connect(username=login, password=password)
        errors.append(str(e.value))
        t.close()
    assert errors[0] == errors[1]


def test_exec_and_shell_are_refused(connect):
    t, _ = connect()
    for request in (lambda ch: ch.exec_command("md5sum /etc/passwd"), lambda ch: ch.invoke_shell()):
        ch = t.open_session(timeout=10)
        with pytest.raises(paramiko.SSHException):
            request(ch)
        ch.close()


def test_dropped_connection_leaves_previous_version(connect, daemon):
    t, sftp = connect()
    sftp.putfo(_bytes(b"old", 1000), "/drop.txt")
    f = sftp.open("/drop.txt", "wb")
    f.write(b"new partial content" * 5000)
    f.flush()
    t.close()  # no CLOSE for the handle
    _, sftp2 = connect()
    deadline = time.time() + 10
    while time.time() < deadline and list(daemon.staging_dir.iterdir()):
        time.sleep(0.1)
    assert _read(sftp2, "/drop.txt") == b"old" * 1000
    assert not list(daemon.staging_dir.iterdir())


def test_random_access_writes_become_one_new_version(connect, daemon):
    _, sftp = connect()
    sftp.putfo(_bytes(b"A", 10), "/rw.txt")
    f = sftp.open("/rw.txt", "r+")
    f.set_pipelined(False)
    f.seek(20)
    f.write(b"tail")
    f.seek(0)
    f.write(b"head")
    f.flush()
    assert _read(sftp, "/rw.txt") == b"A" * 10  # not visible before CLOSE
    f.close()
    assert _read(sftp, "/rw.txt") == b"head" + b"A" * 6 + bytes(10) + b"tail"
    out = daemon.cli("versions", "list", "/acme/rw.txt", "--json", check=True)
    assert out.stdout.count('"id"') == 2


def test_random_writes_then_dropped_connection_keep_previous(connect, daemon):
    t, sftp = connect()
    sftp.putfo(_bytes(b"B", 100_000), "/rw2.txt")
    f = sftp.open("/rw2.txt", "r+")
    f.seek(50_000)
    f.write(b"x" * 1000)
    f.seek(10)
    f.write(b"y" * 1000)
    f.flush()
    t.close()
    _, sftp2 = connect()
    deadline = time.time() + 10
    while time.time() < deadline and list(daemon.staging_dir.iterdir()):
        time.sleep(0.1)
    assert _read(sftp2, "/rw2.txt") == b"B" * 100_000
    assert not list(daemon.staging_dir.iterdir())


def test_resume_appends_and_keeps_previous_version(connect, daemon):
    _, sftp = connect()
    sftp.putfo(_bytes(b"0123456789", 1), "/resume.txt")
    with sftp.open("/resume.txt", "a") as f:
        f.write(b"abc")
    assert _read(sftp, "/resume.txt") == b"0123456789abc"
    versions = daemon.cli("versions", "list", "/acme/resume.txt", "--json",
                          check=True).stdout
    assert versions.count('"id"') == 2


def test_setstat_mtime_after_upload(connect):
    _, sftp = connect()
    sftp.putfo(_bytes(b"x", 5), "/mtime.txt")
    sftp.utime("/mtime.txt", (1_600_000_000, 1_600_000_000))
    assert sftp.stat("/mtime.txt").st_mtime == 1_600_000_000
    sftp.chmod("/mtime.txt", 0o600)  # meaningless here: accepted, not an error


def test_rename_refuses_overwrite_posix_rename_keeps_version(connect, daemon):
    _, sftp = connect()
    sftp.putfo(_bytes(b"target", 1), "/t.txt")
    sftp.putfo(_bytes(b"source", 1), "/s.txt")
    with pytest.raises(IOError):
        sftp.rename("/s.txt", "/t.txt")
    sftp.posix_rename("/s.txt", "/t.txt")
    assert _read(sftp, "/t.txt") == b"source" and "s.txt" not in sftp.listdir("/")
    out = daemon.cli("versions", "list", "/acme/t.txt", "--json", check=True)
    assert out.stdout.count('"id"') == 2


def test_quota_exceeded_mid_upload_keeps_nothing(daemon):
    daemon.cli("client", "add", "tiny", "--quota", "1MiB", check=True)
    password = "Tiny-quota-pass-1"
    daemon.cli("user", "add", "tina", "--client", "tiny", "--password-stdin", "--no-totp",
               input=(password + "\n").encode(), check=True)
    t = paramiko.Transport((HOST, daemon.sftp_port))
    t.connect(username="tina", password=password)
    sftp = paramiko.SFTPClient.from_transport(t)
    with pytest.raises(IOError):
        sftp.putfo(_bytes(os.urandom(1024), 2048), "/big.bin")
    assert "big.bin" not in sftp.listdir("/")
    t.close()


def _bytes(unit: bytes, n: int):
    import io
    return io.BytesIO(unit * n)


def test_public_key_login_managed_from_the_cli(daemon, tmp_path):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True,
                   timeout=30)
    daemon.cli("user", "key", "add", "alice", "--file", f"{key}.pub", check=True)
    fingerprint = json.loads(daemon.cli("user", "key", "list", "alice", "--json",
                                        check=True).stdout)[0]["fingerprint"]
    pkey = paramiko.Ed25519Key.from_private_key_file(str(key))
    for login, ok in (("alice", True), ("bob", False)):
        t = paramiko.Transport((HOST, daemon.sftp_port))
        try:
            if ok:
                t.connect(username=login, pkey=pkey)
                assert isinstance(paramiko.SFTPClient.from_transport(t).listdir("/"), list)
            else:
                with pytest.raises(paramiko.AuthenticationException):
                    t.connect(username=login, pkey=pkey)
        finally:
            t.close()
    daemon.cli("user", "key", "remove", "alice", fingerprint, check=True)
    t = paramiko.Transport((HOST, daemon.sftp_port))
    with pytest.raises(paramiko.AuthenticationException):
        t.connect(username="alice", pkey=pkey)
    t.close()


def test_statvfs_reports_the_clients_quota(daemon):
    proc = daemon.run_sftp("alice", ["df"])
    assert proc.returncode == 0, proc.stderr
    row = [line.split() for line in proc.stdout.decode().splitlines()
           if line.strip() and line.split()[0].isdigit()][0]
    size_kib, used_kib, avail_kib = int(row[0]), int(row[1]), int(row[2])
    assert size_kib == 10 * 1024 * 1024  # the fixture's 10 GiB quota, in KiB
    assert used_kib + avail_kib == size_kib


def test_host_keys_are_kept_across_restarts(daemon):
    def scan():
        out = subprocess.run(["ssh-keyscan", "-p", str(daemon.sftp_port), "-t",
                              "ed25519,rsa", HOST], capture_output=True, timeout=30).stdout
        return sorted(line.split(None, 1)[1] for line in out.decode().splitlines()
                      if line and not line.startswith("#"))
    before = scan()
    assert len(before) == 2 and any("ssh-ed25519" in k for k in before)
    assert any(k.startswith("ssh-rsa") for k in before)
    daemon.restart()
    assert scan() == before
