"""Logins that the throttle and the audit trail cannot miss, against the real daemon.

- a wrong password at SFTP's keyboard-interactive prompt counts at once, also when
  the client leaves at the code prompt; so does a right password whose code never
  comes;
- a block holds for a login the daemon remembers (a drive already in use);
- a WebDAV drive session is never an SFTP credential, and every SFTP login,
  remembered or not, is in the audit trail;
- a malformed Basic Authorization header is a 400 with no internal text.
The daemon blocks an account after 5 failures here, with no delay.
"""
import base64
import json
import time

import paramiko
import pyotp
import pytest

from tests.support.daemon import HOST, running_daemon

BLOCK_AFTER = 5


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-logingaps", {"auth": dict(
        account_block_after=BLOCK_AFTER, account_delay_after=1000, address_delay_after=1000,
        address_block_after=1000, block_time="1h")})


_seq = iter(range(1000))


def _totp_user(d):
    return d.add_user(f"tina{next(_seq)}")


def _code(user, offset=0):
    return pyotp.TOTP(user.totp_secret).at(time.time() + offset * 30)


def _interactive(d, login, password, code=None):
    """keyboard-interactive over paramiko: the password, then the code or, when
    `code` is None, leave at the code prompt. True if logged in."""
    t = paramiko.Transport((HOST, d.sftp_port))
    t.start_client(timeout=10)

    def answer(title, instructions, prompts):
        if prompts and "code" in prompts[0][0].lower():
            if code is None:
                t.close()
                raise EOFError("left at the code prompt")
            return [code]
        return [password]

    try:
        t.auth_interactive(login, answer)
        return t.is_authenticated()
    except (paramiko.SSHException, EOFError):
        return False
    finally:
        t.close()


def _sftp_password(d, login, secret) -> bool:
    t = paramiko.Transport((HOST, d.sftp_port))
    try:
        t.connect(username=login, password=secret)
        return True
    except paramiko.AuthenticationException:
        return False
    finally:
        t.close()


def _failed_logins(d, login):
    events = json.loads(d.cli("audit", "list", "--user", login, "--action", "login",
                              "--json", check=True).stdout)
    return [e for e in events if e["outcome"] != "ok"]


def _dav_status(d, login, secret):
    return d.request(None, "PROPFIND", "/", "-H", "Depth: 0", "-u", f"{login}:{secret}").status


def _wait_for_audit(d, login, count, timeout=10):
    """The listener records an abandoned login when it sees the connection end."""
    deadline = time.monotonic() + timeout
    while len(_failed_logins(d, login)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return _failed_logins(d, login)


def test_wrong_passwords_left_at_the_code_prompt_count(daemon):
    tina = _totp_user(daemon)
    for i in range(BLOCK_AFTER):
        assert not _interactive(daemon, tina.login, f"wrong-{i}")
    assert len(_wait_for_audit(daemon, tina.login, BLOCK_AFTER)) == BLOCK_AFTER
    assert not _interactive(daemon, tina.login, tina.password, _code(tina)), "blocked"


def test_a_right_password_whose_code_never_comes_counts(daemon):
    tina = _totp_user(daemon)
    for _ in range(BLOCK_AFTER):
        assert not _interactive(daemon, tina.login, tina.password)
    failed = _wait_for_audit(daemon, tina.login, BLOCK_AFTER)
    assert len(failed) == BLOCK_AFTER and all("abandoned" in e["detail"] for e in failed)
    assert not _interactive(daemon, tina.login, tina.password, _code(tina)), "blocked"


def test_a_user_without_totp_gets_the_same_prompts(daemon):
    """A wrong password is asked for a code like a right one of a TOTP user."""
    prompts = []

    def record(title, instructions, answers):
        prompts.append([p for p, _ in answers])
        return ["wrong-password" if len(prompts) == 1 else "123456"]

    for login in ("alice", "tina-nobody"):
        t = paramiko.Transport((HOST, daemon.sftp_port))
        t.start_client(timeout=10)
        try:
            with pytest.raises(paramiko.AuthenticationException):
                t.auth_interactive(login, record)
        finally:
            t.close()
    assert prompts == [["Password: "], ["Verification code: "]] * 2
    daemon.cli("user", "unlock", "alice", check=True)


def test_a_block_holds_for_a_remembered_login(daemon):
    alice = daemon.users["alice"]
    assert _dav_status(daemon, "alice", alice.password) == 207      # remembered from now on
    for i in range(BLOCK_AFTER):
        assert _dav_status(daemon, "alice", f"wrong-{i}") == 401
    assert _dav_status(daemon, "alice", alice.password) == 401
    assert not _sftp_password(daemon, "alice", alice.password)
    daemon.cli("user", "unlock", "alice", check=True)
    assert _dav_status(daemon, "alice", alice.password) == 207


def test_a_drive_session_is_not_an_sftp_credential(daemon):
    tina = _totp_user(daemon)
    secret = tina.password + _code(tina)
    assert _dav_status(daemon, tina.login, secret) == 207           # opens a drive session
    assert not _sftp_password(daemon, tina.login, secret), "the code was used already"
    assert _dav_status(daemon, tina.login, secret) == 207           # the drive still works
    assert _sftp_password(daemon, tina.login, tina.password + _code(tina, 1))


def test_every_sftp_login_is_audited(daemon):
    bob = daemon.users["bob"]
    before = len(json.loads(daemon.cli("audit", "list", "--user", "bob", "--action", "login",
                                       "--json", check=True).stdout))
    for _ in range(3):
        assert _sftp_password(daemon, "bob", bob.password)
    events = json.loads(daemon.cli("audit", "list", "--user", "bob", "--action", "login",
                                   "--json", check=True).stdout)[before:]
    assert [(e["protocol"], e["outcome"]) for e in events] == [("sftp", "ok")] * 3


@pytest.mark.parametrize("value", [
    "Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
    "Basic " + base64.b64encode(b"no-colon-here").decode(), "basic", "Basic ====="])
def test_a_malformed_basic_header_is_a_400_without_internals(daemon, value):
    r = daemon.request(None, "PROPFIND", "/", "-H", "Depth: 0", "-H", f"Authorization: {value}")
    assert r.status == 400, r
    body = r.body.decode("utf-8", "replace")
    for internal in ("Traceback", "Exception", "Error(", "binascii", "UnicodeDecode", ".py"):
        assert internal not in body


def test_the_password_answer_writes_nothing_either_way(daemon):
    """What happens at the code prompt must not depend on the password: neither a
    right nor a wrong one is counted or audited before the code is answered (that
    work took time only after a wrong one: a timing oracle)."""
    tina = _totp_user(daemon)
    for password in (tina.password, "wrong-password"):
        seen = []

        def answer(title, instructions, prompts):
            if "code" in prompts[0][0].lower():
                seen.append(len(_failed_logins(daemon, tina.login)))
                return ["000000"]
            return [password]

        t = paramiko.Transport((HOST, daemon.sftp_port))
        t.start_client(timeout=10)
        try:
            with pytest.raises(paramiko.AuthenticationException):
                t.auth_interactive(tina.login, answer)
        finally:
            t.close()
        failed = _failed_logins(daemon, tina.login)
        assert seen == [len(failed) - 1], "counted once, when the code was answered"
    daemon.cli("user", "unlock", tina.login, check=True)


def test_attempts_at_once_meet_the_block_they_cause(daemon):
    """Parallel wrong passwords from many addresses: no more than the block allows
    are checked; the rest are refused as blocked."""
    import threading
    daemon.add_user("dave", "acme", totp=False)
    statuses, start = [], threading.Barrier(16)

    def attempt(i):
        start.wait()
        r = daemon.request(None, "PROPFIND", "/", "-H", "Depth: 0", "-u", f"dave:wrong-{i}",
                           "--interface", f"127.0.7.{i + 1}")
        statuses.append(r.status)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [401] * 16
    events = json.loads(daemon.cli("audit", "list", "--user", "dave", "--action", "login",
                                   "--json", check=True).stdout)
    outcomes = [e["outcome"] for e in events]
    assert outcomes.count("failed") <= BLOCK_AFTER and outcomes.count("blocked") >= 16 - \
        BLOCK_AFTER
