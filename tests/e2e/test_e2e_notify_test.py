"""`strongroom notify test LOGIN` (issue 13), the real CLI against a real SMTP server
(tests/support/smtp.py, aiosmtpd): delivered over STARTTLS with a login, or over
implicit TLS; the certificate verified unless verify_certificate is false (the test
server's is self-signed: refused, until SSL_CERT_FILE trusts it); and every failure
one line on stderr, a non-zero exit, no traceback, an audit event: a wrong password,
a server down, a server without STARTTLS, a refused recipient, an address with a line
break. No daemon is needed: the command sends by itself."""
import json
import sqlite3

import pytest

from tests.support.daemon import Daemon
from tests.support.smtp import SmtpServer

ALICE = "alice@firm.test"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A provisioned data directory (not served); alice has an email address."""
    d = Daemon(tmp_path_factory.mktemp("notify"))
    d.provision()
    d.cli("user", "set", "alice", "--email", ALICE, check=True)
    return d


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with SmtpServer(tmp_path_factory.mktemp("smtp")) as smtp:
        yield smtp


@pytest.fixture
def smtp(server):
    """The module's STARTTLS+AUTH server, with its switches and record reset."""
    server.refuse_auth, server.refused_recipients = False, set()
    server.messages.clear()
    yield server
    if server._controller is None:
        server.start()


def configure(data: Daemon, smtp: SmtpServer, **overrides) -> None:
    data.set_options("mail", **{**smtp.mail_options(), **overrides})


def notify_test(data: Daemon, login: str = "alice", *args: str):
    r = data.cli("notify", "test", login, *args)
    assert "Traceback" not in r.stderr + r.stdout
    return r


def failed_with(r) -> str:
    """The one error line of a command that failed."""
    assert r.returncode != 0 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("strongroom: error: "), r.stderr
    return lines[0].removeprefix("strongroom: error: ")


def last_audit(data: Daemon) -> dict:
    r = data.cli("audit", "list", "--action", "notify-test", "--json", check=True)
    return json.loads(r.stdout)[-1]


def test_delivered_over_starttls_with_a_login(data, smtp):
    configure(data, smtp)
    r = notify_test(data, "alice", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    [got] = smtp.wait_for(1)
    assert out["answer"].startswith("250 2.0.0 Ok: queued as T")
    assert (out["to"], out["server"], out["security"]) == (
        ALICE, f"127.0.0.1:{smtp.port}", "starttls")
    assert got.peer_tls and got.mail_from == "files@firm.test" and got.rcpt_tos == (ALICE,)
    msg = got.message
    assert (msg["To"], msg["From"], msg["Auto-Submitted"]) == (
        ALICE, "Strongroom <files@firm.test>", "auto-generated")
    assert msg["Subject"] == "Strongroom test message" and msg["Message-ID"]
    assert "notify test" in msg.get_content()
    event = last_audit(data)
    assert (event["outcome"], event["actor"].startswith("admin:")) == ("ok", True)
    assert out["answer"] in event["detail"]
    human = notify_test(data)
    assert human.returncode == 0 and f"answered: 250 2.0.0" in human.stdout


def test_the_certificate_is_verified_unless_told_not_to(data, smtp, monkeypatch):
    configure(data, smtp, verify_certificate=True)
    line = failed_with(notify_test(data))
    assert line == "the mail server's certificate did not verify: self-signed certificate"
    assert smtp.messages == []
    assert last_audit(data)["outcome"] == "failed"
    # trusted through the system's store (OpenSSL reads SSL_CERT_FILE): the same
    # verifying client now takes it, so verification is what refused it above
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp.cert_file))
    assert notify_test(data).returncode == 0
    assert len(smtp.wait_for(1)) == 1


def test_a_wrong_password_is_one_line(data, smtp, tmp_path):
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    configure(data, smtp, password_file=str(wrong))
    line = failed_with(notify_test(data))
    assert line == "the mail server refused the login (535 5.7.8 Authentication " \
                   "credentials invalid)"
    assert smtp.messages == []
    assert "535" in last_audit(data)["detail"]


def test_a_missing_password_file_is_named(data, smtp, tmp_path):
    configure(data, smtp, password_file=str(tmp_path / "nowhere"))
    line = failed_with(notify_test(data))
    assert line == f"cannot read the SMTP password file {tmp_path / 'nowhere'}: " \
                   "No such file or directory"


def test_a_server_down_then_up(data, smtp):
    configure(data, smtp)
    smtp.stop()
    line = failed_with(notify_test(data))
    assert line == f"cannot reach mail server 127.0.0.1:{smtp.port}: Connection refused"
    smtp.start()
    assert notify_test(data).returncode == 0
    assert len(smtp.wait_for(1)) == 1


def test_implicit_tls(data, tmp_path):
    with SmtpServer(tmp_path, tls=True) as smtp:
        configure(data, smtp)
        r = notify_test(data, "alice", "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["security"] == "tls"
        [got] = smtp.wait_for(1)
        assert got.peer_tls and got.rcpt_tos == (ALICE,)


def test_no_plain_text_when_starttls_is_not_offered(data, tmp_path):
    with SmtpServer(tmp_path, starttls=False) as smtp:
        configure(data, smtp, security="starttls")
        line = failed_with(notify_test(data))
        assert line == f"the mail server 127.0.0.1:{smtp.port} does not offer STARTTLS: " \
                       "nothing was sent in plain text (see [mail] security)"
        assert smtp.messages == []
        configure(data, smtp, security="none")     # said explicitly: loopback relay
        assert notify_test(data).returncode == 0
        assert not smtp.wait_for(1)[0].peer_tls


def test_a_refused_recipient(data, smtp):
    configure(data, smtp)
    smtp.refused_recipients = {ALICE}
    line = failed_with(notify_test(data))
    assert line == f"the mail server refused recipient {ALICE}: 550 5.1.1 <{ALICE}>: " \
                   "Recipient address rejected: User unknown"
    assert smtp.messages == []


def test_an_address_with_a_line_break_is_refused(data, smtp):
    """The CLI refuses such an address; one put into the database by other means must
    not become a second header or a second SMTP command either."""
    configure(data, smtp)
    bad = "bob@firm.test\r\nBcc: eve@evil.test"
    assert data.cli("user", "set", "bob", "--email", bad).returncode != 0
    with sqlite3.connect(data.data_dir / "strongroom.db") as db:
        db.execute("UPDATE users SET email = ? WHERE login = 'bob'", (bad,))
    line = failed_with(notify_test(data, "bob"))
    assert line == f"not a usable email address: {bad!r}"
    assert smtp.messages == []


@pytest.mark.parametrize("login, options, says", [
    ("carol", {}, "no user named 'carol'"),
    ("staff", {}, "user 'staff' has no email address: strongroom user set staff --email"),
    ("alice", {"host": ""}, "mail is not configured: set [mail] host"),
    ("alice", {"sender": ""}, "[mail] sender is empty in "),
])
def test_nothing_to_send_is_one_line(data, smtp, login, options, says):
    configure(data, smtp, **options)
    assert says in failed_with(notify_test(data, login))
    assert smtp.messages == []


def test_no_login_offered_in_plain_text(data, smtp):
    """security none to a server that offers AUTH only after STARTTLS: the password is
    never sent, and the line says why."""
    configure(data, smtp, security="none")
    line = failed_with(notify_test(data))
    assert line.startswith(f"the mail server 127.0.0.1:{smtp.port} offers no login (AUTH)")
    assert smtp.messages == []
