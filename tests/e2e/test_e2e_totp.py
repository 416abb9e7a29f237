"""Two-factor login on every protocol, with real clients against the real daemon.

SFTP: OpenSSH sftp answering "Password:" and "Verification code:" through
SSH_ASKPASS, password+code as one string (sshpass), public key then code; PuTTY
psftp answering both prompts through expect; lftp and sshfs with password+code.
Refused: the password alone, the key alone, a wrong code, a reused code.
WebDAV: password+code opens a drive session that keeps working across many
requests (rclone, davfs2) and after the code's 30 s window; the password alone is
refused; an app password works without a code and stops at once when revoked.
Each test provisions its own user, because a code is accepted only once per user.
"""
import dataclasses
import json
import subprocess
import time

import paramiko
import pyotp
import pytest

from tests.support.clients import host_fingerprint, ok, run
from tests.support.daemon import HOST, need, running_daemon, sftp_lines
from tests.support.mounts import davfs2_mount

STEP = 30


def code(user, offset: int = 0) -> str:
    """The user's TOTP code `offset` steps from now (valid: -1, 0, +1).

    The previous step's code stays valid only until the current step ends: with fewer than
    10 s left, wait for the next step so that the code still works when the client sends it."""
    if offset < 0 and STEP - time.time() % STEP < 10:
        time.sleep(STEP - time.time() % STEP + 0.5)
    return pyotp.TOTP(user.totp_secret).at(time.time() + offset * STEP)


def with_password(user, password: str):
    return dataclasses.replace(user, password=password)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    # every refused login here comes from 127.0.0.1: keep the address counter out of the way
    yield from running_daemon(tmp_path_factory, "e2e-totp", {
        "auth": {"address_block_after": 10000, "address_delay_after": 10000}})


_seq = iter(range(10000))


@pytest.fixture
def tina(daemon):
    """A fresh TOTP user of client acme."""
    return daemon.add_user(f"tina{next(_seq)}")


def askpass(daemon, password: str, answer_code: str | None):
    """An SSH_ASKPASS program answering the password and the verification code prompts."""
    script = daemon.path("askpass.sh")
    script.write_text("#!/bin/sh\ncase \"$1\" in\n"
                      f"  *Verification*) printf '%s\\n' '{answer_code or ''}' ;;\n"
                      f"  *) printf '%s\\n' '{password}' ;;\nesac\n")
    script.chmod(0o700)
    return {"SSH_ASKPASS": str(script), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}


def openssh(daemon, user, batch, *, methods: str, env=None, identity=None):
    """OpenSSH sftp in batch mode with only `methods`; credentials from env (askpass)."""
    need("sftp")
    bfile = daemon.path("batch.txt")
    bfile.write_text("".join(line + "\n" for line in batch))
    argv = ["sftp", "-F", "/dev/null", "-oStrictHostKeyChecking=no",
            "-oUserKnownHostsFile=/dev/null", "-oLogLevel=ERROR", "-oConnectTimeout=10",
            "-oBatchMode=no", "-oNumberOfPasswordPrompts=1",
            f"-oPreferredAuthentications={methods}", "-oIdentitiesOnly=yes",
            "-oIdentityAgent=none", *(("-i", str(identity)) if identity else
                                      ("-oPubkeyAuthentication=no",)),
            "-P", str(daemon.sftp_port), "-b", str(bfile), f"{user.login}@{HOST}"]
    return subprocess.run(argv, env={"PATH": "/usr/bin:/bin", "HOME": str(daemon.work),
                                     **(env or {})},
                          cwd=daemon.work, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=60, start_new_session=True)


def _sshpass(daemon, user, secret, batch):
    return daemon.run_sftp(with_password(user, secret), batch,
                           options=("-oPreferredAuthentications=password",
                                    "-oNumberOfPasswordPrompts=1"))


# -- SFTP ---------------------------------------------------------------------------

def test_openssh_keyboard_interactive_asks_password_then_code(daemon, tina):
    local = daemon.path("ki.txt")
    local.write_bytes(b"two factors\n")
    proc = openssh(daemon, tina, [f"put {local} /ki.txt", "ls -1 /"],
                   methods="keyboard-interactive", env=askpass(daemon, tina.password, code(tina)))
    assert proc.returncode == 0, proc.stderr
    assert "/ki.txt" in sftp_lines(proc) or "ki.txt" in " ".join(sftp_lines(proc))


def test_openssh_password_followed_by_code_in_one_string(daemon, tina):
    proc = _sshpass(daemon, tina, tina.password + code(tina), ["ls /"])
    assert proc.returncode == 0, proc.stderr


def test_password_alone_wrong_code_and_reused_code_are_refused(daemon, tina):
    assert _sshpass(daemon, tina, tina.password, ["ls /"]).returncode != 0
    wrong = f"{(int(code(tina)) + 1) % 1000000:06d}"
    assert _sshpass(daemon, tina, tina.password + wrong, ["ls /"]).returncode != 0
    ki = openssh(daemon, tina, ["ls /"], methods="keyboard-interactive",
                 env=askpass(daemon, tina.password, wrong))
    assert ki.returncode != 0
    used = code(tina)
    assert _sshpass(daemon, tina, tina.password + used, ["ls /"]).returncode == 0
    again = openssh(daemon, tina, ["ls /"], methods="keyboard-interactive",
                    env=askpass(daemon, tina.password, used))
    assert again.returncode != 0, "a code must be accepted only once"
    assert _sshpass(daemon, tina, tina.password + used, ["ls /"]).returncode != 0
    # and over WebDAV too: the replay guard is per user, not per protocol
    r = daemon.request(with_password(tina, tina.password + used), "PROPFIND", "/", "-H",
                       "Depth: 0")
    assert r.status == 401


def test_publickey_is_only_a_first_factor(daemon, tina):
    need("ssh-keygen")
    key = daemon.path("id_ed25519")
    ok(run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)]))
    daemon.cli("user", "key", "add", tina.login, "--file", f"{key}.pub", check=True)
    alone = openssh(daemon, tina, ["ls /"], methods="publickey", identity=key)
    assert alone.returncode != 0, "a key alone must not log a TOTP user in"
    both = openssh(daemon, tina, ["ls /"], methods="publickey,keyboard-interactive",
                   identity=key, env=askpass(daemon, "not asked", code(tina)))
    assert both.returncode == 0, both.stderr
    # the code prompt after the key must not accept the password instead
    wrong = openssh(daemon, tina, ["ls /"], methods="publickey,keyboard-interactive",
                    identity=key, env=askpass(daemon, tina.password, tina.password))
    assert wrong.returncode != 0


def test_psftp_answers_both_prompts_through_expect(daemon, tina):
    need("psftp", "expect")
    script = daemon.path("psftp-batch.txt")
    script.write_text("ls /\nquit\n")
    exp = daemon.path("psftp.exp")
    exp.write_text(
        "set timeout 30\n"
        f"spawn psftp -P {daemon.sftp_port} -hostkey {host_fingerprint(daemon)} "
        f"-b {script} {tina.login}@{HOST}\n"
        'expect "Password:"\n'
        f'send "{tina.password}\\r"\n'
        'expect "Verification code:"\n'
        f'send "{code(tina)}\\r"\n'
        "expect eof\n"
        "catch wait result\n"
        "exit [lindex $result 3]\n")
    proc = subprocess.run(["expect", str(exp)], capture_output=True, timeout=60,
                          cwd=daemon.work, stdin=subprocess.DEVNULL)
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, out
    assert "Remote working directory is /" in out or "Listing directory /" in out, out


def test_lftp_and_sshfs_with_password_and_code(daemon, tina):
    need("lftp", "sshfs", "fusermount")
    ssh = ("ssh -a -x -F /dev/null -oStrictHostKeyChecking=no -oUserKnownHostsFile=/dev/null "
           "-oPubkeyAuthentication=no -oLogLevel=ERROR -oConnectTimeout=10 "
           "-oPreferredAuthentications=password")
    script = (f'set cmd:fail-exit yes; set sftp:auto-confirm yes; set net:max-retries 1; '
              f'set net:timeout 20; set sftp:connect-program "{ssh}"; '
              f'open --env-password -u {tina.login} sftp://{HOST}:{daemon.sftp_port}; '
              f'mkdir /lftp2fa; ls /')
    proc = run(["lftp", "-c", script], cwd=daemon.work,
               env={"PATH": "/usr/bin:/bin", "HOME": str(daemon.work),
                    "LFTP_PASSWORD": tina.password + code(tina, -1)})
    assert proc.returncode == 0, proc.stderr
    assert "lftp2fa" in proc.stdout
    mnt = daemon.path("mnt")
    mnt.mkdir()
    ok(run(["sshfs", "-p", str(daemon.sftp_port), "-F", "/dev/null", "-o",
            "password_stdin,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,"
            "PubkeyAuthentication=no,PreferredAuthentications=password,ConnectTimeout=10",
            f"{tina.login}@{HOST}:/", str(mnt)],
           input=(tina.password + code(tina) + "\n").encode(), timeout=30))
    try:
        (mnt / "lftp2fa" / "via-sshfs.txt").write_bytes(b"mounted with two factors\n")
        assert (mnt / "lftp2fa" / "via-sshfs.txt").read_bytes() == b"mounted with two factors\n"
    finally:
        subprocess.run(["fusermount", "-u", str(mnt)], capture_output=True, timeout=30)


def test_app_password_is_refused_over_sftp_by_default(daemon, tina):
    out = daemon.cli("user", "app-password", "create", tina.login, "--label", "nas", "--json",
                     check=True)
    secret = json.loads(out.stdout)["password"]
    assert _sshpass(daemon, tina, secret, ["ls /"]).returncode != 0
    assert daemon.request(with_password(tina, secret), "PROPFIND", "/", "-H",
                          "Depth: 0").status == 207


# -- WebDAV ---------------------------------------------------------------------------

def propfind(daemon, user, secret):
    return daemon.request(with_password(user, secret), "PROPFIND", "/", "-H", "Depth: 1").status


def test_webdav_password_alone_refused_password_and_code_opens_a_drive_session(daemon, tina):
    assert propfind(daemon, tina, tina.password) == 401
    mount = tina.password + code(tina)
    assert [propfind(daemon, tina, mount) for _ in range(15)] == [207] * 15
    sessions = json.loads(daemon.cli("user", "sessions", tina.login, "--json",
                                     check=True).stdout)
    assert len(sessions) == 1 and sessions[0]["network"] == "127.0.0.0/24"
    assert propfind(daemon, tina, tina.password + "000000") == 401


def test_drive_session_outlives_the_code_with_rclone_and_davfs2(daemon, tina, davfs2_shared):
    """Mount with password+code, then keep working after the code has expired."""
    secret = tina.password + code(tina, -1)     # expires soonest: at most 60 s to wait
    expires = (int(time.time() // STEP) + 1) * STEP + 1
    user = with_password(tina, secret)
    daemon.users[tina.login] = user
    daemon._rclone_conf = None
    shared, gid = davfs2_shared
    src = daemon.path("drive.txt")
    src.write_bytes(b"before the code expired\n")
    remote = daemon.remote(user, "drive")
    assert daemon.rclone(user, "copyto", src, f"{remote}/a.txt").returncode == 0
    with davfs2_mount(daemon, tina.login, daemon.path("davmnt"), shared, gid, "cache-2fa") as m:
        assert (m / "drive" / "a.txt").read_bytes() == b"before the code expired\n"
        time.sleep(max(0.0, expires - time.time()))
        assert pyotp.TOTP(tina.totp_secret).verify(secret[-6:], valid_window=1) is False
        (m / "drive" / "b.txt").write_bytes(b"after the code expired\n")
        assert daemon.rclone(user, "copyto", src, f"{remote}/c.txt").returncode == 0
        listing = daemon.rclone(user, "lsf", remote)
        assert listing.returncode == 0, listing.stderr
    check = daemon.rclone(user, "cat", f"{remote}/b.txt")
    assert check.stdout == "after the code expired\n", check.stderr
    assert set(daemon.rclone(user, "lsf", remote).stdout.split()) == {"a.txt", "b.txt", "c.txt"}


def test_app_password_works_without_code_and_revocation_is_immediate(daemon, tina):
    out = daemon.cli("user", "app-password", "create", tina.login, "--label", "Laptop",
                     "--json", check=True)
    secret = json.loads(out.stdout)["password"]
    assert [propfind(daemon, tina, secret) for _ in range(5)] == [207] * 5
    listed = json.loads(daemon.cli("user", "app-password", "list", tina.login, "--json",
                                   check=True).stdout)
    assert [r["label"] for r in listed] == ["Laptop"] and "password" not in listed[0]
    daemon.cli("user", "app-password", "revoke", tina.login, "Laptop", check=True)
    assert propfind(daemon, tina, secret) == 401


def test_disable_ends_sftp_sessions_and_drive_sessions_within_seconds(daemon, tina):
    mount = tina.password + code(tina, -1)
    assert propfind(daemon, tina, mount) == 207
    t = paramiko.Transport((HOST, daemon.sftp_port))
    t.connect(username=tina.login, password=tina.password + code(tina))
    sftp = paramiko.SFTPClient.from_transport(t)
    assert sftp.listdir("/") is not None
    daemon.cli("user", "disable", tina.login, check=True)
    assert propfind(daemon, tina, mount) == 401
    deadline = time.monotonic() + 10
    while t.is_active() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not t.is_active(), "the live SFTP session of a disabled user must end"
    t.close()
    daemon.cli("user", "enable", tina.login, check=True)
    assert propfind(daemon, tina, mount) == 401, "disabling also ended the drive session"


def test_passwd_and_totp_reset(daemon, tina):
    new = f"Another-long-{time.time_ns()}"
    daemon.cli("user", "passwd", tina.login, "--password-stdin", input=f"{new}\n".encode(),
               check=True)
    assert _sshpass(daemon, tina, tina.password + code(tina, -1), ["ls /"]).returncode != 0
    assert _sshpass(daemon, tina, new + code(tina), ["ls /"]).returncode == 0
    out = json.loads(daemon.cli("user", "totp-reset", tina.login, "--json", check=True).stdout)
    reset = dataclasses.replace(tina, password=new, totp_secret=out["totp_secret"])
    assert out["otpauth_uri"].startswith("otpauth://totp/")
    assert _sshpass(daemon, reset, new + code(tina, 1), ["ls /"]).returncode != 0
    assert _sshpass(daemon, reset, new + code(reset), ["ls /"]).returncode == 0


def test_user_add_prints_a_qr_code(daemon):
    out = daemon.cli("user", "add", "qr-user", "--client", "acme", check=True).stdout
    assert "otpauth://totp/" in out
    assert any(block in out for block in "█▀▄"), "no QR code drawn"
