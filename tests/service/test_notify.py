"""Notifications in process, on SQLite and PostgreSQL: the outbox row commits with the
change and only with it (appliance.notify.outbox); routing in both directions and for
libraries, never to the actor and never a name outside the recipient's rights
(appliance.notify.routing, .digests); frequencies; security notices; the sender's
claims, retries and giving up (with tiny Mailer stand-ins). With the real daemon and
SMTP server: tests/e2e/test_e2e_notify.py."""
import json
import threading
import time

import pytest
from sqlalchemy import func, select

from strongroom.appliance.db.models import NotifyDelivery, NotifyDigest, NotifyEvent, User
from strongroom.appliance.errors import BadRequest, QuotaExceeded
from strongroom.appliance.notify import digests, routing, sender as sending
from strongroom.appliance.notify.mailer import MailError
from tests.support.sessions import PASSWORD, put

LATER = 3600.0     # seconds: past any quiet period


def setup_firm(app):
    """acme ("Acme Ltd", users alice and carol), beta (bob), a library shared with acme;
    staff sam (all of acme), sue (acme's /docs only), tim (nothing granted); each with an
    address, and dan (acme) without one."""
    a = app.admin()
    a.add_client("acme")
    a.set_client("acme", display_name="Acme Ltd")
    a.add_client("beta")
    for login, client in (("alice", "acme"), ("carol", "acme"), ("bob", "beta"),
                          ("sam", None), ("sue", None), ("tim", None), ("dan", "acme")):
        a.add_user(login, client=client, staff=client is None, password=PASSWORD,
                   email=None if login == "dan" else f"{login}@example.org", with_totp=False)
    a.add_folder("/acme/docs")
    a.grant("/acme", login="sam", rights="read,write,delete")
    a.grant("/acme/docs", login="sue", rights="read")
    a.grant("/beta", login="tim", rights="write")
    a.add_library("lib", ["acme"])
    a.grant("/lib", login="sam", rights="read,write")
    return {login: session(app, login) for login in ("alice", "carol", "bob", "sam", "sue")}


def session(app, login):
    return app.session(app.auth.password_login(login, PASSWORD, "test"), "test")


def events(app):
    with app.db.read() as s:
        return [(e.action, e.path, e.old_path, e.actor)
                for e in s.scalars(select(NotifyEvent).order_by(NotifyEvent.id))]


def deliver(app, later=LATER):
    """Route and build as a sender would `later` seconds from now; {login: text} of the
    digests this made (not skipped)."""
    now = time.time() + later
    with app.db.read() as s:
        before = s.scalar(select(func.max(NotifyDigest.id))) or 0
    routing.route(app, now)
    digests.build_due(app, now)
    with app.db.read() as s:
        rows = s.execute(select(User.login, NotifyDigest).join(
            NotifyDigest, NotifyDigest.user_id == User.id).where(
            NotifyDigest.kind == "changes", NotifyDigest.state == "pending",
            NotifyDigest.id > before)).all()
    return {login: d.body_text for login, d in rows}


# -- the outbox ---------------------------------------------------------------------------

def test_each_committed_change_is_one_event_and_litter_none(app):
    u = setup_firm(app)
    put(u["sam"], "/acme/docs/q3.pdf", b"1")
    put(u["sam"], "/acme/docs/q3.pdf", b"22")
    put(u["sam"], "/acme/docs/~$q3.pdf", b"owner file")
    put(u["sam"], "/acme/docs/q3.pdf.part", b"partial")
    u["alice"].rename("/docs/q3.pdf", "/q3-final.pdf")
    u["alice"].remove("/q3-final.pdf")
    u["alice"].mkdir("/empty")
    assert events(app) == [("added", "/docs/q3.pdf", None, "sam"),
                           ("changed", "/docs/q3.pdf", None, "sam"),
                           ("renamed", "/q3-final.pdf", "/docs/q3.pdf", "alice"),
                           ("deleted", "/q3-final.pdf", None, "alice")]


def test_an_aborted_or_refused_upload_writes_no_event(app):
    u = setup_firm(app)
    app.admin().set_client("beta", quota=10)
    upload = u["alice"].open_write("/draft.pdf")
    upload.append(b"half")
    upload.abort()
    with pytest.raises(QuotaExceeded):
        put(u["bob"], "/big.bin", b"x" * 100)
    assert events(app) == []


def test_the_event_is_in_the_transaction_that_commits_the_change(app, monkeypatch):
    """The audit event is written after the outbox row, in the same transaction: when it
    fails, neither the new version nor its event exists."""
    u = setup_firm(app)
    append = app.audit.append

    def failing(s, **kw):
        if kw["action"] == "write":
            raise RuntimeError("the database went away")
        append(s, **kw)
    monkeypatch.setattr(app.audit, "append", failing)
    with pytest.raises(RuntimeError):
        put(u["sam"], "/acme/docs/lost.pdf", b"never committed")
    monkeypatch.setattr(app.audit, "append", append)
    assert events(app) == []
    assert "lost.pdf" not in [e.name for e in u["sam"].list("/acme/docs")]


# -- routing --------------------------------------------------------------------------------

def test_staff_changes_go_to_the_clients_users_and_not_to_the_actor(app):
    u = setup_firm(app)
    put(u["sam"], "/acme/docs/annual report.pdf", b"report")
    got = deliver(app)
    assert sorted(got) == ["alice", "carol"]           # not bob, not staff, not dan
    assert "/docs/annual report.pdf" in got["alice"] and "sam" in got["alice"]


def test_client_changes_go_to_staff_with_the_read_right_on_each_file(app):
    u = setup_firm(app)
    put(u["alice"], "/docs/receipts.zip", b"r")
    put(u["alice"], "/salaries.xlsx", b"s")
    got = deliver(app)
    assert sorted(got) == ["sam", "sue"]              # tim has no right in acme
    assert "/acme/docs/receipts.zip" in got["sam"] and "/acme/salaries.xlsx" in got["sam"]
    assert "receipts.zip" in got["sue"] and "salaries" not in got["sue"]


def test_library_files_go_to_the_users_of_every_client_that_sees_it(app):
    u = setup_firm(app)
    put(u["sam"], "/lib/price list.pdf", b"p")
    got = deliver(app)
    assert sorted(got) == ["alice", "carol"]          # beta does not see lib
    assert "/lib/price list.pdf" in got["alice"]


def test_a_rename_out_of_sight_is_a_deletion_for_who_saw_only_the_old_name(app):
    u = setup_firm(app)
    for staff in ("sam", "sue"):
        app.admin().set_notify_frequency(staff, "immediate")
    put(u["alice"], "/docs/plan.pdf", b"p")
    deliver(app)
    u["alice"].rename("/docs/plan.pdf", "/private-plan.pdf")
    got = deliver(app, LATER * 2)
    assert "deleted: /acme/docs/plan.pdf" in got["sue"] and "private" not in got["sue"]
    assert "renamed: /acme/private-plan.pdf" in got["sam"]


def test_five_changes_are_one_line_and_a_file_added_then_deleted_none(app):
    u = setup_firm(app)
    for i in range(5):
        put(u["sam"], "/acme/docs/budget.xlsx", b"v%d" % i)
    put(u["sam"], "/acme/docs/oops.txt", b"o")
    u["sam"].remove("/acme/docs/oops.txt")
    text = deliver(app)["alice"]
    assert text.count("budget.xlsx") == 1 and "oops" not in text


def test_no_digest_when_nothing_is_left_to_show(app):
    u = setup_firm(app)
    put(u["alice"], "/salaries.xlsx", b"s")
    deliver(app)
    with app.db.read() as s:
        sue = s.scalar(select(NotifyDigest.state).join(User, User.id == NotifyDigest.user_id)
                       .where(User.login == "sue"))
    assert sue == "skipped"


def test_nothing_is_routed_while_the_tree_is_not_quiet(app):
    u = setup_firm(app)
    put(u["sam"], "/acme/docs/a.pdf", b"a")
    assert deliver(app, later=0) == {}
    assert deliver(app) != {}


# -- frequencies --------------------------------------------------------------------------

def test_a_daily_user_gets_one_digest_a_day_and_off_none(app):
    u = setup_firm(app)
    app.admin().set_notify_frequency("carol", "off")
    put(u["alice"], "/docs/1.pdf", b"1")
    assert "sam" in deliver(app)
    put(u["alice"], "/docs/2.pdf", b"2")
    assert deliver(app, LATER * 2) == {}
    with app.db.read() as s:
        waiting = s.scalar(select(func.count()).select_from(NotifyDelivery).where(
            NotifyDelivery.digest_id.is_(None)))
    assert waiting == 2            # 2.pdf for sam and sue, until a day has passed
    later = deliver(app, 86400 + LATER * 3)
    assert "2.pdf" in later["sam"]
    put(u["sam"], "/acme/docs/3.pdf", b"3")
    assert sorted(deliver(app, 86400 + LATER * 4)) == ["alice"]


def test_user_notify_is_audited_shown_in_user_list_and_checked(app):
    setup_firm(app)
    users = {r["login"]: r for r in app.admin().list_users()}
    assert users["alice"]["notify"] == "immediate" and users["sam"]["notify"] == "daily"
    app.admin().set_notify_frequency("alice", "weekly")
    assert {r["login"]: r for r in app.admin().list_users()}["alice"]["notify"] == "weekly"
    [event] = app.admin().audit_events(action="user-notify")
    assert event["detail"] == "login=alice frequency=weekly"
    with pytest.raises(BadRequest):
        app.admin().set_notify_frequency("alice", "monthly")


# -- security notices -----------------------------------------------------------------------

def security_notices(app):
    with app.db.read() as s:
        return [(login, json.loads(d.payload)["what"]) for login, d in s.execute(
            select(User.login, NotifyDigest).join(User, User.id == NotifyDigest.user_id)
            .where(NotifyDigest.kind == "security").order_by(NotifyDigest.id))]


def test_security_notices_are_queued_with_the_change(app):
    setup_firm(app)
    a = app.admin()
    a.set_password("alice", "Another-long-passphrase-77")
    a.reset_totp("alice")
    a.create_app_password("alice", "laptop", None)
    a.set_password("dan", "Another-long-passphrase-77")       # no address: nothing
    assert security_notices(app) == [("alice", "password-changed"), ("alice", "totp-reset"),
                                      ("alice", "app-password-created")]


def test_an_account_blocked_by_failed_logins_is_told_once(app):
    setup_firm(app)
    for _ in range(app.config.auth.account_block_after + 2):
        app.auth.lockout.failed("carol", "10.0.0.9")
    assert security_notices(app) == [("carol", "account-blocked")]


# -- the sender -----------------------------------------------------------------------------

class Recording:
    enabled = True

    def __init__(self, fail_with: str | None = None):
        self.sent, self.fail_with = [], fail_with

    def send(self, msg):
        if self.fail_with:
            raise MailError(self.fail_with)
        self.sent.append(msg)
        return "250 2.0.0 Ok"


def due_now(app):
    with app.db.write() as s:
        for d in s.scalars(select(NotifyDigest)):
            d.next_attempt_at = 0.0


def test_the_sender_sends_each_message_once_with_headers(app):
    u = setup_firm(app)
    put(u["sam"], "/acme/docs/<script>alert(1)<script>.pdf", b"x")
    deliver(app)
    due_now(app)
    first, second = sending.Sender(app, poll=1), sending.Sender(app, poll=1)
    mailer = Recording()
    assert first.send_due(mailer) == 2 and second.send_due(mailer) == 0
    msg = next(m for m in mailer.sent if m["To"] == "alice@example.org")
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["List-Unsubscribe"].endswith("/web/account>")
    assert msg["Subject"] == "1 new document for Acme Ltd"
    html = msg.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert app.admin().notify_status()["pending_count"] == 0


def test_a_failing_message_is_retried_later_then_given_up(app, monkeypatch):
    u = setup_firm(app)
    put(u["sam"], "/acme/docs/a.pdf", b"a")
    deliver(app)
    due_now(app)
    s = sending.Sender(app, poll=1)
    assert s.send_due(Recording("the mail server refused the login")) == 0
    assert s.send_due(Recording()) == 0                       # not due again yet
    status = app.admin().notify_status()
    assert status["pending_count"] == 2
    assert status["pending"][0]["last_error"] == "the mail server refused the login"
    with app.db.write() as db:
        for d in db.scalars(select(NotifyDigest)):
            d.next_attempt_at, d.failing_since = 0.0, time.time() - sending.GIVE_UP
    assert s.send_due(Recording("still refused")) == 0
    status = app.admin().notify_status()
    assert status["failed_count"] == 2 and status["pending_count"] == 0


def test_the_portal_account_queues_a_notice_with_its_change(app):
    from strongroom.appliance.service.account import Account
    setup_firm(app)
    Account(app, app.auth.principal_of("alice"), "web", "10.0.0.9").create_app_password("phone")
    [(login, what)] = security_notices(app)
    assert (login, what) == ("alice", "app-password-created")
    with app.db.read() as s:
        payload = json.loads(s.scalar(select(NotifyDigest.payload)))
    assert (payload["protocol"], payload["address"]) == ("web", "10.0.0.9")


class Slow(Recording):
    def send(self, msg):
        time.sleep(0.2)
        return super().send(msg)


def test_two_senders_at_once_send_each_message_once(app):
    """Two daemons sharing the database: each message is claimed by one of them."""
    u = setup_firm(app)
    for login in ("sam", "sue"):
        app.admin().set_notify_frequency(login, "immediate")
    put(u["sam"], "/acme/docs/a.pdf", b"a")
    put(u["alice"], "/docs/b.pdf", b"b")
    deliver(app)
    due_now(app)
    mailer = Slow()
    threads = [threading.Thread(target=sending.Sender(app, poll=1).send_due, args=(mailer,))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(m["To"] for m in mailer.sent) == sorted(
        f"{login}@example.org" for login in ("alice", "carol", "sam", "sue"))


def test_while_mail_is_off_changes_wait_and_nothing_is_built(app):
    u = setup_firm(app)
    assert not sending.Mailer(app.config).enabled        # [mail] host is empty
    put(u["sam"], "/acme/docs/a.pdf", b"a")
    with app.db.write() as s:
        for e in s.scalars(select(NotifyEvent)):
            e.ts -= LATER                                # quiet long ago
    sending.Sender(app, poll=1).round()
    status = app.admin().notify_status()
    assert (status["mail"], status["events_waiting"], status["deliveries_waiting"],
            status["pending_count"]) == (None, 0, 2, 0)


@pytest.mark.parametrize("save", ["word", "vim"])
def test_an_editors_save_through_other_names_is_one_changed_line(app, save):
    u = setup_firm(app)
    sam = u["sam"]
    put(sam, "/acme/docs/report.docx", b"v1")
    deliver(app)
    if save == "word":      # MOVE away to litter, the new content onto the name, DELETE
        put(sam, "/acme/docs/~WRD0000.tmp", b"v2")
        sam.rename("/acme/docs/report.docx", "/acme/docs/~WRL0001.tmp")
        sam.rename("/acme/docs/~WRD0000.tmp", "/acme/docs/report.docx")
        sam.remove("/acme/docs/~WRL0001.tmp")
    else:                   # rename to the backup name, write anew, remove the backup
        sam.rename("/acme/docs/report.docx", "/acme/docs/report.docx~")
        put(sam, "/acme/docs/report.docx", b"v2")
        sam.remove("/acme/docs/report.docx~")
    text = deliver(app, LATER * 2)["alice"]
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(lines) == 1 and lines[0].startswith("- changed: /docs/report.docx ("), text


def test_a_refused_recipient_fails_at_once_and_the_queue_moves_on(app, tmp_path):
    """With the real SMTP server (aiosmtpd, STARTTLS and AUTH): a 5xx for one recipient
    is final for that message only: given up at once, the next message still sent."""
    from strongroom import config as configmod
    from strongroom.appliance.notify.mailer import Mailer
    from tests.support.smtp import SmtpServer
    u = setup_firm(app)
    put(u["sam"], "/acme/docs/a.pdf", b"a")
    deliver(app)
    due_now(app)
    with SmtpServer(tmp_path / "smtp") as smtp:
        smtp.refused_recipients = {"alice@example.org"}
        cfg = configmod.load(app.data_dir, overrides={"mail": smtp.mail_options()})
        assert sending.Sender(app, poll=1).send_due(Mailer(cfg)) == 1
        assert [tuple(m.rcpt_tos) for m in smtp.wait_for(1)] == [("carol@example.org",)]
    status = app.admin().notify_status()
    assert status["pending_count"] == 0 and status["failed_count"] == 1
    assert "refused recipient alice@example.org" in status["failed"][0]["last_error"]
    with app.db.read() as s:
        assert s.scalar(select(NotifyDigest.attempts).where(
            NotifyDigest.state == "failed")) == 1
