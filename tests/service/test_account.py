"""A user's own account (appliance.service.account) and invitation links
(appliance.service.invitations), in process on SQLite and PostgreSQL: what needs the
current password and a fresh code, what is used once, and the audit trail of each.
The portal pages over them are driven end to end in tests/e2e/test_e2e_portal_account.py."""
import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import select

from strongroom.appliance.db.models import (AuditEvent, DriveSession, NotifyDigest, User,
                                            WebSession)
from strongroom.appliance.errors import AuthFailed, BadRequest, Conflict, NotFound
from strongroom.appliance.service.account import Account
from strongroom.appliance.service.invitations import Invitations, Unusable

P = "Correct-horse-battery-staple-42"
NEW = "Another-long-passphrase-77"


def make_user(app, login="tom", with_totp=True):
    if not any(c["name"] == "acme" for c in app.admin().list_clients()):
        app.admin().add_client("acme")
    return app.admin().add_user(login, client="acme", staff=False, email=None, password=P,
                                with_totp=with_totp)


def account(app, login="tom"):
    return Account(app, app.auth.principal_of(login), "web", "10.0.0.9")


def code(secret, offset=0):
    return pyotp.TOTP(secret).at(time.time() + offset * 30)


def web_session(app, login="tom"):
    app.web_sessions.open(app.auth.principal_of(login), "10.0.0.9", "test")
    with app.db.read() as s:
        return s.scalars(select(WebSession.id).order_by(WebSession.id.desc())).first()


def events(app, action):
    with app.db.read() as s:
        return [(e.actor, e.protocol, e.address, e.outcome, e.detail) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))]


# -- the password ----------------------------------------------------------------------

def test_password_change_needs_the_current_password_and_a_fresh_code(app):
    secret = make_user(app)["totp_secret"]
    mine, other = web_session(app), web_session(app)
    app.auth.password_login("tom", P + code(secret, -1), "webdav", "10.0.0.1")  # a drive
    me = account(app)
    with pytest.raises(AuthFailed):
        me.change_password("wrong-password-123", code(secret), NEW)
    with pytest.raises(AuthFailed):
        me.change_password(P, "000000" if code(secret) != "000000" else "111111", NEW)
    with pytest.raises(BadRequest):                       # the policy, before anything
        me.change_password(P, code(secret), "short")
    me.change_password(P, code(secret), NEW, keep_web_session=mine)
    assert app.auth.password_login("tom", NEW + code(secret, 1), "sftp")
    with app.db.read() as s:
        assert s.scalars(select(WebSession.id)).all() == [mine]        # `other` ended
        assert s.scalars(select(DriveSession)).all() == []
    assert other != mine
    assert [e[3] for e in events(app, "password-change")] == ["denied", "denied", "ok"]
    assert events(app, "password-change")[-1][:3] == ("tom", "web", "10.0.0.9")


def test_a_code_used_for_a_password_change_is_not_accepted_again(app):
    secret = make_user(app)["totp_secret"]
    c = code(secret)
    account(app).change_password(P, c, NEW)
    with pytest.raises(AuthFailed):
        account(app).change_password(NEW, c, P + "-x")
    with pytest.raises(AuthFailed):                      # nor for a login
        app.auth.password_login("tom", NEW + c, "sftp")


def test_wrong_current_passwords_are_throttled_like_logins(app):
    from strongroom.auth import throttle
    make_user(app, with_totp=False)
    me = account(app)
    # blocked after 3, never delayed on the way (the real policy waits 1 s an attempt)
    app.auth.lockout.account = throttle.Policy(delay_after=100, block_after=3)
    for _ in range(3):
        with pytest.raises(AuthFailed):
            me.change_password("wrong-password-123", "", NEW)
    assert app.auth.lockout.judge("tom", None)[0]
    with pytest.raises(AuthFailed):                      # blocked: even the right one
        me.change_password(P, "", NEW)
    assert events(app, "password-change")[-1][3:] == ("denied", "throttled")
    with pytest.raises(AuthFailed):                      # and a login, as after failed logins
        app.auth.password_login("tom", P, "sftp")


# -- TOTP enrolment -------------------------------------------------------------------

def test_totp_enrolment_is_confirmed_by_a_code_of_the_pending_secret(app):
    make_user(app, with_totp=False)
    sid = web_session(app)
    me = account(app)
    first = me.start_totp(sid)
    assert me.start_totp(sid) == first                   # the same until confirmed
    assert "secret=" + first.secret in first.uri
    with app.db.read() as s:
        assert s.get(WebSession, sid).pending_totp == first.secret
        assert s.get(User, first_user_id(app)).totp_secret is None
    with pytest.raises(BadRequest):
        me.confirm_totp(sid, P, "000000" if code(first.secret) != "000000" else "111111")
    with pytest.raises(AuthFailed):
        me.confirm_totp(sid, "wrong-password-123", code(first.secret))
    c = code(first.secret)
    me.confirm_totp(sid, P, c)
    assert me.has_totp()
    with app.db.read() as s:
        assert s.get(WebSession, sid).pending_totp is None
    with pytest.raises(AuthFailed):                      # the confirming code is used up
        app.auth.password_login("tom", P + c, "sftp")
    with pytest.raises(AuthFailed):                      # the password alone no longer does
        app.auth.password_login("tom", P, "sftp")
    assert app.auth.password_login("tom", P + code(first.secret, 1), "sftp")
    with pytest.raises(Conflict):
        me.start_totp(sid)
    assert [e[3] for e in events(app, "totp-enrol")] == ["denied", "denied", "ok"]


def test_a_pending_secret_is_the_sessions_own(app):
    make_user(app, with_totp=False)
    make_user(app, "ann", with_totp=False)
    theirs = web_session(app, "ann")
    with pytest.raises(NotFound):
        account(app).start_totp(theirs)
    with pytest.raises(BadRequest):                      # nothing waiting on a fresh session
        account(app).confirm_totp(web_session(app), P, "123456")


def first_user_id(app, login="tom"):
    return app.auth.principal_of(login).user_id


# -- app passwords, drive and portal sessions ------------------------------------------------

def test_app_password_create_list_revoke(app):
    make_user(app)
    me = account(app)
    made = me.create_app_password("Laptop")
    assert app.auth.password_login("tom", made["password"], "webdav", "10.0.0.1")
    assert [p["label"] for p in me.app_passwords()] == ["Laptop"]
    with pytest.raises(Conflict):
        me.create_app_password("Laptop")
    with pytest.raises(BadRequest):
        me.create_app_password("  ")
    me.revoke_app_password("Laptop")
    with pytest.raises(AuthFailed):
        app.auth.password_login("tom", made["password"], "webdav", "10.0.0.1")
    with pytest.raises(NotFound):
        me.revoke_app_password("Laptop")
    assert events(app, "app-password-create") == [("tom", "web", "10.0.0.9", "ok",
                                                    "label=Laptop")]
    assert len(events(app, "app-password-revoke")) == 1


def test_sessions_of_another_user_cannot_be_ended(app):
    secret = make_user(app)["totp_secret"]
    make_user(app, "ann", with_totp=False)
    app.auth.password_login("tom", P + code(secret), "webdav", "10.0.0.1")
    drive = account(app).drive_sessions()[0]["id"]
    theirs = web_session(app, "ann")
    with pytest.raises(NotFound):
        account(app, "ann").end_drive_session(drive)
    with pytest.raises(NotFound):
        account(app).end_web_session(theirs)
    account(app).end_drive_session(drive)
    account(app, "ann").end_web_session(theirs)
    assert account(app).drive_sessions() == [] and account(app, "ann").web_sessions() == []
    assert len(events(app, "drive-session-end")) == len(events(app, "web-session-end")) == 1


# -- invitations -----------------------------------------------------------------------------

def invite(app, login="ivy"):
    if not any(c["name"] == "acme" for c in app.admin().list_clients()):
        app.admin().add_client("acme")
    out = app.admin().add_user(login, client="acme", staff=False, email="ivy@example.org",
                               password=None, with_totp=True, invite=True)
    return out, parse_qs(urlsplit(out["invite_url"]).query)["t"][0]


def test_an_invited_user_cannot_log_in_until_the_link_is_used_once(app):
    out, token = invite(app)
    assert "totp_secret" not in out and "password" not in out
    assert out["invite_url"].startswith(f"https://127.0.0.1:{app.config.server.webdav_port}"
                                        "/web/invite?t=")
    with app.db.read() as s:
        user = s.scalar(select(User).where(User.login == "ivy"))
        assert user.totp_secret is None and user.password_hash.startswith("$argon2id$")
    with pytest.raises(AuthFailed):
        app.auth.password_login("ivy", "", "sftp")
    links = Invitations(app, "web", "10.0.0.7")
    found = links.open(token)
    assert found.login == "ivy" and links.open(token).secret == found.secret
    with pytest.raises(BadRequest):
        links.accept(token, "short", code(found.secret))
    with pytest.raises(BadRequest):
        links.accept(token, NEW, "000000" if code(found.secret) != "000000" else "111111")
    principal = links.accept(token, NEW, code(found.secret))
    assert principal.login == "ivy"
    assert app.auth.password_login("ivy", NEW + code(found.secret, 1), "sftp")
    for attempt in (lambda: links.open(token), lambda: links.accept(token, NEW, "123456")):
        with pytest.raises(Unusable) as refused:
            attempt()
        assert refused.value.status == 410
    with pytest.raises(Unusable) as unknown:
        links.open(token[:-2] + "xx")
    assert unknown.value.status == 400
    assert events(app, "invite-accepted") == [("ivy", "web", "10.0.0.7", "ok",
                                               "password set, TOTP enrolled")]
    assert [e[4] for e in events(app, "invite-refused")] == [
        "link already used", "link already used", "unknown link"]
    assert "invite=yes" in events(app, "user-add")[-1][4]
    with app.db.read() as s:                  # the enrolment is told by email, once
        notices = s.scalars(select(NotifyDigest.payload).where(
            NotifyDigest.kind == "security")).all()
    assert len(notices) == 1 and '"totp-enrolled"' in notices[0]


def test_an_expired_invitation_is_refused(app, monkeypatch):
    monkeypatch.setitem(app.config._values["web"], "invite_lifetime", 0.5)
    _, token = invite(app)
    links = Invitations(app, "web", None)
    secret = links.open(token).secret
    time.sleep(0.6)
    with pytest.raises(Unusable) as refused:
        links.accept(token, NEW, code(secret))
    assert refused.value.status == 410
    assert events(app, "invite-refused")[-1][3:] == ("denied", "link expired")
    with pytest.raises(AuthFailed):
        app.auth.password_login("ivy", NEW + code(secret), "sftp")


def test_invite_goes_with_neither_a_password_nor_no_totp(app):
    app.admin().add_client("acme")
    for password, with_totp in ((P, True), (None, False)):
        with pytest.raises(BadRequest):
            app.admin().add_user("ivy", client="acme", staff=False, email=None,
                                 password=password, with_totp=with_totp, invite=True)


# -- notifications ---------------------------------------------------------------------

def test_the_user_chooses_how_often_to_hear_of_new_documents(app):
    make_user(app)
    mine = account(app)
    assert mine.notify_frequency() == "immediate"          # a client user's default
    mine.set_notify_frequency("weekly")
    assert mine.notify_frequency() == "weekly"
    listed = {u["login"]: u for u in app.admin().list_users()}
    assert listed["tom"]["notify"] == "weekly"               # what `user list --json` shows
    with pytest.raises(BadRequest):
        mine.set_notify_frequency("hourly; drop table users")
    assert mine.notify_frequency() == "weekly"
    assert events(app, "user-notify") == [("tom", "web", "10.0.0.9", "ok",
                                           "login=tom frequency=weekly")]
