"""Brute-force throttling against the real daemon, over both protocols; and the end
of an unused WebDAV drive session (idle timeout of 3 s here).

The daemon here blocks an account after 4 failures and an address after 15, and
delays attempts after 2 failures by 0.5 s. A block holds for the right password
too, on either protocol, until `strongroom user unlock`; an unknown account gets
exactly the same answers as a real one.
"""
import time

import pytest

from tests.support.daemon import User, running_daemon

ACCOUNT_BLOCK, ADDRESS_BLOCK, DELAY = 4, 15, 0.5


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-throttle", {"auth": dict(
        account_delay_after=2, account_block_after=ACCOUNT_BLOCK, address_delay_after=1000,
        address_block_after=ADDRESS_BLOCK, delay=f"{DELAY}s", block_time="1h",
        drive_session_idle="3s")})


def dav(daemon, login, password):
    """(status, body, WWW-Authenticate) of an authenticated PROPFIND on /."""
    out = daemon.path("headers")
    r = daemon.request(None, "PROPFIND", "/", "-H", "Depth: 0", "-u", f"{login}:{password}",
                       "-D", str(out))
    headers = out.read_text(errors="replace") if out.exists() else ""
    challenge = [h.strip() for h in headers.splitlines() if h.lower().startswith("www-auth")]
    return r.status, r.body, challenge


def sftp_ok(daemon, login, password) -> bool:
    return daemon.run_sftp(User(login, password, "acme"), ["ls /"],
                           options=("-oNumberOfPasswordPrompts=1",)).returncode == 0


def test_account_blocked_on_both_protocols_until_unlocked(daemon):
    alice = daemon.users["alice"]
    answers = []
    for i in range(ACCOUNT_BLOCK):
        t = time.monotonic()
        answers.append(dav(daemon, "alice", f"wrong-{i}"))
        if i >= 2:
            assert time.monotonic() - t >= DELAY, "attempts past the delay threshold wait"
    assert {a[0] for a in answers} == {401}
    assert dav(daemon, "alice", alice.password)[0] == 401, "blocked: even the right password"
    assert not sftp_ok(daemon, "alice", alice.password)
    daemon.cli("user", "unlock", "alice", check=True)
    assert dav(daemon, "alice", alice.password)[0] == 207
    assert sftp_ok(daemon, "alice", alice.password)


def test_unknown_account_gets_the_same_answers(daemon):
    real = [dav(daemon, "bob", f"wrong-{i}") for i in range(ACCOUNT_BLOCK + 1)]
    ghost = [dav(daemon, "nobody-here", f"wrong-{i}") for i in range(ACCOUNT_BLOCK + 1)]
    assert real == ghost
    assert dav(daemon, "bob", daemon.users["bob"].password) == \
        dav(daemon, "nobody-here", daemon.users["bob"].password)
    daemon.cli("user", "unlock", "bob", check=True)
    assert dav(daemon, "bob", daemon.users["bob"].password)[0] == 207


def test_address_blocked_after_many_accounts_fail(daemon):
    daemon.cli("user", "unlock", "--address", "127.0.0.1", check=True)
    for i in range(ADDRESS_BLOCK):
        assert dav(daemon, f"guess{i}", "password123")[0] == 401
    staff = daemon.users["staff"]
    assert dav(daemon, "staff", staff.password)[0] == 401, "the address is blocked"
    out = daemon.cli("user", "unlock", "--address", "127.0.0.1", check=True)
    assert "cleared" in out.stdout
    assert dav(daemon, "staff", staff.password)[0] == 207


def test_cli_errors_are_one_line(daemon):
    r = daemon.cli("user", "unlock", "no-such-user")
    assert r.returncode != 0 and r.stderr.strip() == \
        "strongroom: error: no user named 'no-such-user'"
    r = daemon.cli("user", "unlock")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1


def test_an_idle_drive_session_is_refused(daemon):
    import pyotp
    daemon.cli("user", "unlock", "--address", "127.0.0.1", check=True)
    tina = daemon.add_user("tina")
    mount = tina.password + pyotp.TOTP(tina.totp_secret).now()
    assert [dav(daemon, "tina", mount)[0] for _ in range(3)] == [207] * 3
    time.sleep(4)
    assert dav(daemon, "tina", mount)[0] == 401, "the drive session ended after 3 s unused"
