"""Every refused login costs the same work, one argon2 verification, whatever the
account: unknown, disabled, without TOTP, with TOTP and a password without a code,
a wrong code, a string that looks like an app password, many drive sessions. So
neither the answer nor its timing tells accounts apart (measured by counting the
verifications, not by a stopwatch)."""
import time

import pyotp
import pytest

from strongroom.appliance.errors import AuthFailed
from strongroom.appliance.service import login as login_module
from tests.support.sessions import PASSWORD

pytestmark = pytest.mark.real_argon2    # login cost and timing: the product's parameters

APP_PASSWORD_LIKE = "sr-abcde-fghjk-mnpqr-stuvw-xyz23-45678"


@pytest.fixture
def accounts(app):
    admin = app.admin()
    admin.add_client("acme")
    for login, totp in (("plain", False), ("tina", True), ("dora", False)):
        admin.add_user(login, client="acme", staff=False, email=None, password=PASSWORD,
                       with_totp=totp)
    admin.set_disabled("dora", True)
    admin.create_app_password("tina", "nas", None)
    return app


def _verifications(monkeypatch, app, login, secret, protocol="webdav"):
    calls = []
    real = login_module.verify_password

    def counting(stored, password):
        calls.append(stored)
        return real(stored, password)

    monkeypatch.setattr(login_module, "verify_password", counting)
    app.auth.lockout.unlock(login=login, address="192.0.2.7")
    with pytest.raises(AuthFailed):
        app.auth.password_login(login, secret, protocol, "192.0.2.7")
    monkeypatch.setattr(login_module, "verify_password", real)
    return len(calls)


@pytest.mark.parametrize("login,secret,protocol", [
    ("nobody", PASSWORD, "webdav"),
    ("dora", PASSWORD, "webdav"),                    # disabled
    ("plain", "wrong-password", "webdav"),
    ("tina", PASSWORD, "webdav"),                    # TOTP: no code after the password
    ("tina", PASSWORD + "000000", "webdav"),         # a wrong code
    ("tina", "wrong-password123456", "sftp"),
    ("tina", APP_PASSWORD_LIKE, "webdav"),           # looks like an app password, is none
    ("nobody", APP_PASSWORD_LIKE, "webdav"),
])
def test_every_refusal_is_one_argon2_verification(accounts, monkeypatch, login, secret, protocol):
    assert _verifications(monkeypatch, accounts, login, secret, protocol) == 1


def test_drive_sessions_do_not_multiply_the_work(accounts, monkeypatch):
    app = accounts
    secret = app.admin().reset_totp("tina")["totp_secret"]
    totp = pyotp.TOTP(secret)
    if time.time() % 30 > 20:      # the codes of now-30 and now+30 stay valid throughout
        time.sleep(31 - time.time() % 30)
    now = time.time()
    for step in range(-1, 2):      # three drive sessions, one per valid code
        app.auth.password_login("tina", PASSWORD + totp.at(now + step * 30), "webdav",
                                "198.51.100.7")
    assert len(app.admin().list_drive_sessions("tina")) == 3
    # a wrong credential from the network of all three: still one verification
    monkeypatch.setattr(app.auth, "_network", lambda address: "198.51.100.0/24")
    assert _verifications(monkeypatch, app, "tina", PASSWORD + "999999") == 1
