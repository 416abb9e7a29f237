"""appliance.notify.mailer without a network: which addresses it takes, that no header
or SMTP command can be smuggled in through an address or subject, what a message it
builds carries, and that Bcc never reaches the transmitted bytes."""
import email
import email.policy

import pytest

from strongroom import config as configmod
from strongroom.appliance.notify import mailer as mailermod
from strongroom.appliance.notify.mailer import Mailer, MailError, check_address


def make(tmp_path, **mail) -> Mailer:
    text = "[mail]\n" + "".join(f"{k} = {configmod.loader._toml_value(v)}\n"
                                for k, v in mail.items())
    (tmp_path / "strongroom.toml").write_text(text)
    return Mailer(configmod.load(tmp_path))


@pytest.mark.parametrize("address", ["alice@firm.test", "a.b+c@sub.firm.test",
                                     "åsa@företag.se", "x@[127.0.0.1]"])
def test_usable_addresses(address):
    assert check_address(address) == address


@pytest.mark.parametrize("address", [
    "alice@firm.test\r\nBcc: eve@evil.test", "alice@firm.test\nRCPT TO:<eve@evil.test>",
    "alice@firm.test\r", "alice @firm.test", "alice", "@firm.test", "alice@", "",
    "alice@firm.test\x00", "alice\t@firm.test"])
def test_unusable_addresses(address):
    with pytest.raises(MailError) as e:
        check_address(address)
    assert "\n" not in str(e.value) and "\r" not in str(e.value)


def test_a_message_is_marked_automatic_and_identified(tmp_path):
    m = make(tmp_path, host="127.0.0.1", sender="Firm files <files@firm.test>")
    msg = m.message("alice@firm.test", "3 new documents for Acme Ltd — שלום", "text\n")
    assert (msg["From"], msg["To"], msg["Auto-Submitted"]) == (
        "Firm files <files@firm.test>", "alice@firm.test", "auto-generated")
    assert msg["Message-ID"].endswith("@firm.test>") and msg["Date"]
    assert msg["Subject"] == "3 new documents for Acme Ltd — שלום"


@pytest.mark.parametrize("to, subject", [
    ("alice@firm.test\r\nBcc: eve@evil.test", "hello"),
    ("alice@firm.test", "hello\r\nBcc: eve@evil.test"),
    ("alice@firm.test", "hello\nX-Injected: yes"),
])
def test_no_header_can_be_injected(tmp_path, to, subject):
    m = make(tmp_path, host="127.0.0.1", sender="files@firm.test")
    with pytest.raises(MailError):
        m.message(to, subject, "text")


def test_bcc_is_in_the_envelope_not_in_the_message(tmp_path):
    m = make(tmp_path, host="127.0.0.1", sender="files@firm.test")
    msg = m.message("alice@firm.test", "s", "t")
    msg["Bcc"] = "archive@firm.test"
    sender, recipients = m._envelope(msg)
    assert (sender, recipients) == ("files@firm.test", ["alice@firm.test", "archive@firm.test"])
    sent = mailermod._flatten(msg, utf8=False)
    assert b"archive@firm.test" not in sent and b"\r\nTo: alice@firm.test\r\n" in sent
    assert email.message_from_bytes(sent, policy=email.policy.default)["Bcc"] is None
    assert msg["Bcc"] == "archive@firm.test"       # the caller's message is left alone


def test_nothing_is_sent_without_a_host_or_a_sender(tmp_path):
    off = make(tmp_path, sender="files@firm.test")
    assert not off.enabled
    with pytest.raises(MailError, match=r"mail is not configured: \[mail\] host is empty"):
        off.send(off.message("alice@firm.test", "s", "t"))
    no_sender = make(tmp_path, host="127.0.0.1")
    with pytest.raises(MailError, match=r"\[mail\] sender is empty"):
        no_sender.message("alice@firm.test", "s", "t")


@pytest.mark.parametrize("content, password", [
    ("secret\n", "secret"), ("secret", "secret"), ("secret\r\n", "secret"),
    ("secret\n\n", "secret\n"), (" spaced secret \n", " spaced secret ")])
def test_the_password_file_loses_one_trailing_newline(tmp_path, content, password):
    (tmp_path / "pw").write_text(content)
    m = make(tmp_path, host="127.0.0.1", username="u", password_file="pw")
    assert m._password() == password


def test_plain_text_to_a_remote_host_is_warned_about_once(tmp_path, caplog):
    make(tmp_path, host="127.0.0.1", security="none")
    make(tmp_path, host="::1", security="none")
    assert not caplog.records
    make(tmp_path, host="mail.firm.test", security="none")
    [record] = caplog.records
    assert record.levelname == "WARNING" and "unencrypted" in record.getMessage()
