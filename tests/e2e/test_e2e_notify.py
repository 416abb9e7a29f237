"""Notifications end to end (issue 13): the real daemon with a two-second quiet period
and its sender polling every 0.3 s (STRONGROOM_NOTIFY_POLL), a real SMTP server with
STARTTLS and AUTH (tests/support/smtp.py), uploads over WebDAV and SFTP, and the
test's own webhook receiver on loopback.

One digest for 200 files uploaded in a burst; routing both ways and for a library,
never a name outside the recipient's rights or another client's tree; the SMTP server
down, then up: delivered once; the daemon killed with -9 while digests wait:
delivered after its restart; the webhook's signature; names with HTML harmless and
names with a line break refused; a security notice at once."""
import hashlib
import hmac
import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.support.daemon import Daemon, User, need
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.slow     # a long module: started first (tests/conftest.py)

QUIET = 2.0          # seconds: [notify] quiet_period
POLL = "0.3"         # seconds: STRONGROOM_NOTIFY_POLL
WAIT = 40.0          # seconds a message may take (quiet period, polls, one retry or two)
KEY = b"webhook-key-for-tests"
ADDRESSES = {"alice": "alice@acme.test", "carol": "carol@acme.test", "bob": "bob@beta.test",
             "staff": "staff@firm.test", "sue": "sue@firm.test"}


class Receiver:
    """An HTTP server on loopback recording each POST's headers and body."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def smtp(tmp_path_factory):
    with SmtpServer(tmp_path_factory.mktemp("smtp")) as server:
        yield server


@pytest.fixture(scope="module")
def hook():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, smtp, hook):
    """alice and carol (acme), bob (beta), staff (every client), sue (staff, acme's /docs
    only), a library shared with acme; everyone with an address and told at once."""
    need("strongroom")
    d = Daemon(tmp_path_factory.mktemp("notify"))
    d.provision()
    d.add_user("carol", "acme", totp=False)
    d.add_user("sue", None, totp=False)
    for login, address in ADDRESSES.items():
        d.cli("user", "set", login, "--email", address, check=True)
        d.cli("user", "notify", login, "--frequency", "immediate", check=True)
    d.cli("client", "set", "acme", "--display-name", "Acme Ltd", check=True)
    d.cli("folder", "add", "/acme/docs", check=True)
    d.cli("acl", "grant", "/acme/docs", "--user", "sue", "--rights", "read", check=True)
    d.cli("library", "add", "lib", "--clients", "acme", check=True)
    d.cli("acl", "grant", "/lib", "--user", "staff", "--rights", "read,write", check=True)
    key = d.root / "webhook.key"
    key.write_bytes(KEY + b"\n")
    d.set_options("mail", **smtp.mail_options())
    d.set_options("notify", quiet_period=f"{QUIET:g}s", webhook_url=hook.url,
                  webhook_secret_file=str(key))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STRONGROOM_NOTIFY_POLL", POLL)
        d.start()
        yield d
        if d.running:
            d.stop()


@pytest.fixture
def fresh(smtp, hook, daemon):
    """Between tests: the server up and its record, and the receiver's, empty."""
    if smtp._controller is None:
        smtp.start()
    daemon.ensure_running()
    smtp.messages.clear()
    hook.received.clear()
    return daemon


def web(d: Daemon, login: str) -> requests.Session:
    s = requests.Session()
    s.verify, s.trust_env = False, False
    s.auth = (login, d.users[login].password)
    return s


def put(s: requests.Session, d: Daemon, path: str, data: bytes = b"content") -> int:
    return s.put(d.base_url + requests.utils.quote(path), data=data, timeout=30).status_code


def mails(smtp: SmtpServer, settle: float = QUIET + 2, at_least: int = 0) -> dict[str, list]:
    """{address: [EmailMessage]} once at least `at_least` messages came and nothing more
    has come for `settle` seconds (a restarted daemon may take longer than that to send
    its first)."""
    seen, deadline = -1, time.monotonic() + WAIT
    while (len(smtp.messages) != seen or seen < at_least) and time.monotonic() < deadline:
        seen = len(smtp.messages)
        time.sleep(settle)
    out: dict[str, list] = {}
    for m in smtp.messages:
        for to in m.rcpt_tos:
            out.setdefault(to, []).append(m.message)
    return out


def text(msg) -> str:
    return msg.get_body(("plain",)).get_content()


def test_200_files_uploaded_over_webdav_make_one_digest_per_user(fresh, smtp):
    d, s = fresh, web(fresh, "staff")
    assert s.request("MKCOL", d.base_url + "/acme/batch", timeout=30).status_code == 201
    started = time.monotonic()
    for i in range(200):
        assert put(s, d, f"/acme/batch/invoice-{i:03d}.pdf", b"%d" % i) == 201
    assert time.monotonic() - started < 60
    got = mails(smtp)
    assert sorted(got) == [ADDRESSES["alice"], ADDRESSES["carol"]]
    [msg] = got[ADDRESSES["alice"]]
    assert msg["Subject"] == "200 new documents for Acme Ltd"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Message-ID"]
    assert msg["List-Unsubscribe"] == f"<https://127.0.0.1:{d.webdav_port}/web/account>"
    body = text(msg)
    assert sum(f"invoice-{i:03d}.pdf" in body for i in range(200)) == 200
    assert f"https://127.0.0.1:{d.webdav_port}/web/files?p=/batch" in body
    assert not msg.is_attachment() and all(not p.is_attachment() for p in msg.walk())


def test_client_uploads_over_sftp_reach_only_staff_with_the_right(fresh, smtp):
    d = fresh
    (d.work / "receipts.zip").write_bytes(b"receipts")
    (d.work / "salaries.xlsx").write_bytes(b"salaries")
    r = d.run_sftp("alice", ["put receipts.zip /docs/receipts.zip",
                             "put salaries.xlsx /salaries.xlsx"])
    assert r.returncode == 0, r.stderr
    got = mails(smtp)
    assert sorted(got) == [ADDRESSES["staff"], ADDRESSES["sue"]]   # not alice, carol, bob
    staff, sue = text(got[ADDRESSES["staff"]][0]), text(got[ADDRESSES["sue"]][0])
    assert "/acme/docs/receipts.zip" in staff and "/acme/salaries.xlsx" in staff
    assert "receipts.zip" in sue and "salaries" not in sue


def test_a_library_file_reaches_the_users_of_every_client_that_sees_it(fresh, smtp):
    d = fresh
    assert put(web(d, "staff"), d, "/lib/price list.pdf") == 201
    got = mails(smtp)
    assert sorted(got) == [ADDRESSES["alice"], ADDRESSES["carol"]]   # beta does not see lib
    assert "/lib/price list.pdf" in text(got[ADDRESSES["alice"]][0])


def test_a_beta_upload_tells_no_acme_user_anything(fresh, smtp):
    d = fresh
    assert put(web(d, "bob"), d, "/beta-plans.pdf") == 201
    got = mails(smtp)
    assert sorted(got) == [ADDRESSES["staff"]]
    assert "/beta/beta-plans.pdf" in text(got[ADDRESSES["staff"]][0])


def test_html_in_a_name_is_escaped_and_a_line_break_refused(fresh, smtp):
    d, s = fresh, web(fresh, "staff")
    name = "<img src=x onerror=alert(1)>&.pdf"
    assert put(s, d, f"/acme/{name}") == 201
    assert put(s, d, "/acme/two\nlines.pdf") == 400
    [msg] = mails(smtp)[ADDRESSES["alice"]]
    html = msg.get_body(("html",)).get_content()
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;&amp;.pdf" in html
    assert name in text(msg) and "lines.pdf" not in text(msg)
    assert "\n" not in msg["Subject"]


def test_smtp_down_then_up_delivers_once(fresh, smtp):
    d = fresh
    smtp.stop()
    assert put(web(d, "staff"), d, "/acme/while-down.pdf") == 201
    status = wait_status(d, lambda st: any(m["attempts"] for m in st["pending"]))
    assert "cannot reach mail server" in status["pending"][0]["last_error"]
    smtp.start()
    got = mails(smtp)
    assert len(got[ADDRESSES["alice"]]) == 1 and len(got[ADDRESSES["carol"]]) == 1
    assert "while-down.pdf" in text(got[ADDRESSES["alice"]][0])
    assert wait_status(d, lambda st: st["pending_count"] == 0)["last_sent_at"]


def test_killed_with_pending_digests_they_are_sent_after_restart(fresh, smtp):
    d = fresh
    smtp.stop()
    assert put(web(d, "staff"), d, "/acme/before-kill.pdf") == 201
    wait_status(d, lambda st: st["pending_count"] >= 2)
    d.kill(signal.SIGKILL)
    smtp.start()
    d.start()
    got = mails(smtp, at_least=2)
    assert [("before-kill.pdf" in text(m)) for m in got[ADDRESSES["alice"]]] == [True]
    assert len(got[ADDRESSES["carol"]]) == 1


def test_each_batch_is_one_signed_webhook_post(fresh, hook, smtp):
    d = fresh
    assert put(web(d, "staff"), d, "/acme/hooked.pdf") == 201
    deadline = time.monotonic() + WAIT
    while not hook.received and time.monotonic() < deadline:
        time.sleep(0.2)
    [(headers, body)] = hook.received
    expected = "sha256=" + hmac.new(KEY, body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Strongroom-Signature"], expected)
    sent = json.loads(body)
    assert sent["tree"] == "acme" and sent["display_name"] == "Acme Ltd"
    assert [(c["action"], c["path"], c["by"]) for c in sent["changes"]] == [
        ("added", "/hooked.pdf", ["staff"])]
    mails(smtp)         # its digests too, before the next test looks


def test_a_password_change_is_told_at_once(fresh, smtp):
    d = fresh
    d.cli("user", "passwd", "bob", "--password-stdin",
          input=b"A-new-long-passphrase-99\n", check=True)
    [got] = smtp.wait_for(1, timeout=WAIT)
    assert got.rcpt_tos == (ADDRESSES["bob"],)
    assert got.message["Subject"] == "Security notice: your password was changed"
    d.users["bob"] = User("bob", "A-new-long-passphrase-99", "beta")


def wait_status(d: Daemon, ready, timeout: float = WAIT) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = json.loads(d.cli("notify", "status", "--json", check=True).stdout)
        if ready(st) or time.monotonic() > deadline:
            assert ready(st), st
            return st
        time.sleep(0.3)


def test_the_daemon_logged_no_traceback_and_no_failed_round(daemon):
    log = daemon.log_text()
    assert "Traceback" not in log and "this round failed" not in log, log[-3000:]
