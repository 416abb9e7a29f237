"""Logins, second factor and throttling in process (on SQLite and PostgreSQL); the pure
rules behind them are in tests/unit/test_auth_rules.py. The protocols are driven end
to end with real clients in test_e2e_totp.py and test_e2e_throttle.py; this covers
what those cannot reach cheaply: time windows, networks, timing, and the SSH state
machine."""
import io
import statistics
import time

import paramiko
import pyotp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select

from strongroom.appliance.db.models import AuditEvent
from strongroom.appliance.errors import AuthFailed
from strongroom.appliance.sftp.sshauth import ALL_METHODS, CODE_PROMPT, PASSWORD_PROMPT, SSHServer
from strongroom.auth import throttle

pytestmark = pytest.mark.real_argon2    # login cost and timing: the product's parameters

P = "Correct-horse-battery-staple-42"


def make_user(app, login="tom", with_totp=True):
    if not any(c["name"] == "acme" for c in app.admin().list_clients()):
        app.admin().add_client("acme")
    return app.admin().add_user(login, client="acme", staff=False, email=None, password=P,
                                with_totp=with_totp)


def now_code(secret, offset=0):
    return pyotp.TOTP(secret).at(time.time() + offset * 30)


# -- the Authenticator ----------------------------------------------------------------

def test_a_code_is_accepted_once_across_protocols(app):
    secret = make_user(app)["totp_secret"]
    c = now_code(secret)
    assert app.auth.password_login("tom", P + c, "sftp", "10.0.0.1").login == "tom"
    for protocol in ("sftp", "webdav"):
        with pytest.raises(AuthFailed):
            app.auth.password_login("tom", P + c, protocol, "10.0.0.1")
    with pytest.raises(AuthFailed):    # an older code after a newer one: refused too
        app.auth.password_login("tom", P + now_code(secret, -1), "sftp", "10.0.0.1")
    with pytest.raises(AuthFailed):
        app.auth.password_login("tom", P, "webdav", "10.0.0.1")


def test_drive_session_is_bound_to_the_network_and_expires(app):
    secret = make_user(app)["totp_secret"]
    mount = P + now_code(secret)
    assert app.auth.password_login("tom", mount, "webdav", "10.1.2.3")
    app.auth._cache.clear()            # as after a restart: found in the database
    assert app.auth.password_login("tom", mount, "webdav", "10.1.2.200")
    with pytest.raises(AuthFailed):
        app.auth.password_login("tom", mount, "webdav", "10.1.3.3")
    app.auth.cfg.drive_session_idle = 0.5
    time.sleep(0.6)
    with pytest.raises(AuthFailed):
        app.auth.password_login("tom", mount, "webdav", "10.1.2.3")


def test_failed_logins_are_audited_and_blocked_accounts_look_like_unknown_ones(app):
    make_user(app, with_totp=False)
    app.auth.lockout.account = throttle.Policy(delay_after=100, block_after=3)
    for login in ("tom", "nobody"):
        for _ in range(3):
            with pytest.raises(AuthFailed) as e:
                app.auth.password_login(login, "wrong-password-x", "webdav", "192.0.2.9")
            assert str(e.value) == "invalid login or password"
    for login in ("tom", "nobody"):     # right password or not: same refusal
        with pytest.raises(AuthFailed) as e:
            app.auth.password_login(login, P, "sftp", "192.0.2.9")
        assert str(e.value) == "invalid login or password"
    app.admin().unlock("tom", None)
    assert app.auth.password_login("tom", P, "sftp", "192.0.2.9").login == "tom"
    with app.db.read() as s:
        rows = [(e.actor, e.protocol, e.address, e.outcome) for e in
                s.scalars(select(AuditEvent).where(AuditEvent.action == "login")
                                         .order_by(AuditEvent.id))]
    assert rows.count(("tom", "webdav", "192.0.2.9", "failed")) == 3
    assert rows.count(("nobody", "webdav", "192.0.2.9", "failed")) == 3
    assert ("tom", "sftp", "192.0.2.9", "blocked") in rows
    assert rows[-1] == ("tom", "sftp", "192.0.2.9", "ok")


def test_failing_takes_as_long_for_unknown_accounts(app):
    make_user(app)

    def seconds(login):
        t = time.perf_counter()
        with pytest.raises(AuthFailed):
            app.auth.password_login(login, "wrong-password-x123456", "sftp", None)
        return time.perf_counter() - t

    app.auth.lockout.account = throttle.Policy(delay_after=1000, block_after=1000)
    known = statistics.median(seconds("tom") for _ in range(5))
    unknown = statistics.median(seconds(f"ghost{i}") for i in range(5))
    assert 0.5 < known / unknown < 2.0, (known, unknown)


# -- the SSH state machine ---------------------------------------------------------------

def test_ssh_key_query_without_signature_is_not_a_factor(app):
    """Offering a key (no signature) must not let keyboard-interactive finish with a code."""
    secret = make_user(app)["totp_secret"]
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()).decode()
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(pem))
    app.admin().add_key("tom", f"{key.get_name()} {key.get_base64()}")
    server = SSHServer(app, "127.0.0.1")
    public = paramiko.PKey.from_type_string(key.get_name(), key.asbytes())
    assert server.check_auth_publickey("tom", public) == paramiko.AUTH_PARTIALLY_SUCCESSFUL
    assert server.get_allowed_auths("tom") == ALL_METHODS     # nothing proven yet
    query = server.check_auth_interactive("tom", "")
    assert [p[0] for p in query.prompts] == [PASSWORD_PROMPT]
    follow = server.check_auth_interactive_response([now_code(secret)])
    assert follow.prompts[0][0] == CODE_PROMPT                # a code is not a password
    assert server.check_auth_interactive_response([now_code(secret)]) == paramiko.AUTH_FAILED
    assert server.session is None
    # with the signature verified, the code alone completes the login
    public.verify_ssh_sig = lambda data, msg: True
    server.check_auth_publickey("tom", public)
    assert public.verify_ssh_sig(b"", None) is True
    assert server.get_allowed_auths("tom") == "keyboard-interactive"
    query = server.check_auth_interactive("tom", "")
    assert [p[0] for p in query.prompts] == [CODE_PROMPT]
    assert server.check_auth_interactive_response([now_code(secret, 1)]) \
        == paramiko.AUTH_SUCCESSFUL
    assert server.session.principal.login == "tom"


def test_enrolling_totp_ends_remembered_password_logins(app):
    make_user(app, with_totp=False)
    assert app.auth.password_login("tom", P, "webdav", "10.0.0.1").login == "tom"
    app.admin().reset_totp("tom")
    time.sleep(5.1)      # past the re-check interval of a remembered password login
    with pytest.raises(AuthFailed):
        app.auth.password_login("tom", P, "webdav", "10.0.0.1")
