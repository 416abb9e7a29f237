"""Sending one email over SMTP with the [mail] settings, and nothing else: who gets what
is decided by the service layer, what a digest says by its builder.

Callers may rely on:
- `Mailer(cfg).enabled` is False while [mail] host is empty, and `send` then refuses;
- `send(msg)` returns the server's answer to the message ("250 2.0.0 Ok: queued as X")
  only once the server has accepted it for every recipient, and otherwise raises
  `MailError` with one line saying why (login refused, server unreachable, certificate
  not verified, recipient refused, STARTTLS not offered...);
- security "starttls" never falls back to plain text, certificates are verified with the
  system's trust store unless verify_certificate is false, every network wait is bounded
  by `timeout`;
- no header or SMTP command can be injected: messages are EmailMessage objects (whose
  header API refuses CR and LF), and every envelope address is checked here as well.
"""
import copy
import email.policy
import email.utils
import io
import ipaddress
import logging
import smtplib
import socket
import ssl
from email.generator import BytesGenerator
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

from strongroom.appliance.errors import StrongroomError

if TYPE_CHECKING:
    from strongroom.config import Config

log = logging.getLogger("strongroom.notify")

TIMEOUT = 30.0          # seconds, for connecting and for each answer of the server
_MAX_ANSWER = 300       # characters of a server's answer quoted in an error


class MailError(StrongroomError):
    """A message was not accepted; str() is one line saying why, for logs and the CLI.
    `permanent`: sending it again cannot help (the address is not one, or the server
    refused the recipient or the message with a 5xx code, RFC 5321 4.2.1)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def check_address(address: str) -> str:
    """`address` (a bare addr-spec, local@domain) if it is one; MailError if it holds a
    line break, space or control character, or lacks a local part or domain."""
    local, at, domain = address.rpartition("@")
    if not (local and at and domain) or \
            any(ch.isspace() or not ch.isprintable() for ch in address):
        raise MailError(f"not a usable email address: {address!r}", permanent=True)
    return address


class Mailer:
    """Sends EmailMessages through the SMTP server of `cfg.mail` ([mail] options)."""

    def __init__(self, cfg: "Config", *, timeout: float = TIMEOUT) -> None:
        self.settings = cfg.mail
        self.config_path = cfg.path
        self.timeout = timeout
        self.enabled = bool(self.settings.host)
        if self.enabled and self.settings.security == "none" and \
                not _is_loopback(self.settings.host):
            log.warning("[mail] security is none: mail to %s:%d, and its login, travel "
                        "unencrypted; use starttls or tls unless the relay is on this "
                        "machine", self.settings.host, self.settings.port)

    @property
    def server(self) -> str:
        """'host:port', as errors name the server."""
        host = self.settings.host
        return f"[{host}]:{self.settings.port}" if ":" in host else \
            f"{host}:{self.settings.port}"

    def message(self, to: str, subject: str, text: str) -> EmailMessage:
        """A plain-text message from [mail] sender to `to`, marked as sent by a machine
        (Auto-Submitted), with Date and Message-ID; add parts or headers to it freely."""
        msg = EmailMessage()
        msg["From"] = self._sender()
        msg["To"] = check_address(to)
        try:
            msg["Subject"] = subject
        except ValueError:
            raise MailError(f"a subject with a line break: {subject!r}") from None
        msg["Date"] = email.utils.formatdate(localtime=True)
        msg["Message-ID"] = email.utils.make_msgid(domain=self._sender_domain())
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text)
        return msg

    def send(self, msg: EmailMessage) -> str:
        """Deliver `msg` to its To, Cc and Bcc addresses (Bcc is not transmitted); From,
        Date and Message-ID are added if missing. Returns the server's one-line answer
        to the message; raises MailError (nothing delivered) otherwise."""
        if not self.enabled:
            raise MailError(f"mail is not configured: [mail] host is empty in "
                            f"{self.config_path}")
        sender, recipients = self._envelope(msg)
        password = self._password()
        try:
            with self._connect() as smtp:
                self._secure(smtp)
                if self.settings.username:
                    smtp.login(self.settings.username, password)
                return self._deliver(smtp, msg, sender, recipients)
        except MailError:
            raise
        except (smtplib.SMTPException, OSError) as e:
            raise MailError(self._reason(e)) from None

    # -- the envelope and the secret ---------------------------------------------------

    def _sender(self) -> str:
        if not self.settings.sender:
            raise MailError(f"[mail] sender is empty in {self.config_path}: set the "
                            "address the emails come from")
        return self.settings.sender

    def _sender_domain(self) -> str:
        return email.utils.parseaddr(self._sender())[1].rpartition("@")[2]

    def _envelope(self, msg: EmailMessage) -> tuple[str, list[str]]:
        if msg["From"] is None:
            msg["From"] = self._sender()
        if msg["Date"] is None:
            msg["Date"] = email.utils.formatdate(localtime=True)
        if msg["Message-ID"] is None:
            msg["Message-ID"] = email.utils.make_msgid(domain=self._sender_domain())
        sender = check_address(email.utils.parseaddr(self._sender())[1])
        fields = [str(v) for name in ("To", "Cc", "Bcc") for v in msg.get_all(name, [])]
        recipients = [check_address(addr) for _name, addr in email.utils.getaddresses(fields)]
        if not recipients:
            raise MailError("a message without a recipient")
        return sender, recipients

    def _password(self) -> str:
        """The password of [mail] password_file, without its trailing newline ('' when
        no username is set: no login)."""
        if not self.settings.username:
            return ""
        path = self.settings.password_file
        if not path:
            raise MailError(f"[mail] username is set but password_file is empty in "
                            f"{self.config_path}")
        try:
            secret = Path(path).read_text("utf-8")
        except OSError as e:
            raise MailError(f"cannot read the SMTP password file {path}: "
                            f"{e.strerror or e}") from None
        except UnicodeDecodeError:
            raise MailError(f"the SMTP password file {path} is not UTF-8 text") from None
        return secret.removesuffix("\n").removesuffix("\r")

    # -- the conversation --------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.settings.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        host, port = self.settings.host, self.settings.port
        try:
            if self.settings.security == "tls":
                return smtplib.SMTP_SSL(host, port, timeout=self.timeout,
                                        context=self._context())
            return smtplib.SMTP(host, port, timeout=self.timeout)
        except (ssl.SSLError, smtplib.SMTPException):
            raise                # said by _reason (both are OSErrors too)
        except (socket.timeout, TimeoutError):
            raise MailError(f"cannot reach mail server {self.server}: no answer within "
                            f"{self.timeout:g} s") from None
        except OSError as e:
            raise MailError(f"cannot reach mail server {self.server}: "
                            f"{e.strerror or e}") from None

    def _secure(self, smtp: smtplib.SMTP) -> None:
        """STARTTLS when asked for; a server that does not offer it is refused rather
        than spoken to in plain text."""
        if self.settings.security != "starttls":
            return
        smtp.ehlo()
        if not smtp.has_extn("starttls"):
            raise MailError(f"the mail server {self.server} does not offer STARTTLS: "
                            "nothing was sent in plain text (see [mail] security)")
        smtp.starttls(context=self._context())
        smtp.ehlo()

    def _deliver(self, smtp: smtplib.SMTP, msg: EmailMessage, sender: str,
                 recipients: list[str]) -> str:
        utf8 = not all(a.isascii() for a in (sender, *recipients))
        smtp.ehlo_or_helo_if_needed()
        if utf8 and not smtp.has_extn("smtputf8"):
            raise MailError(f"the mail server {self.server} cannot take non-ASCII "
                            "addresses (no SMTPUTF8)")
        code, answer = smtp.mail(sender, ["SMTPUTF8", "BODY=8BITMIME"] if utf8 else [])
        if code != 250:
            raise self._refused(smtp, f"refused the sender {sender}", code, answer)
        for rcpt in recipients:
            code, answer = smtp.rcpt(rcpt)
            if code not in (250, 251):
                raise self._refused(smtp, f"refused recipient {rcpt}", code, answer)
        code, answer = smtp.data(_flatten(msg, utf8))
        if code != 250:
            raise self._refused(smtp, "refused the message", code, answer)
        return _one_line(code, answer)

    def _refused(self, smtp: smtplib.SMTP, what: str, code: int,
                 answer: bytes) -> MailError:
        try:
            smtp.rset()      # the transaction is abandoned before QUIT
        except (smtplib.SMTPException, OSError):
            pass
        return MailError(f"the mail server {what}: {_one_line(code, answer)}",
                         permanent=500 <= code < 600 and not what.startswith("refused the sender"))

    def _reason(self, e: Exception) -> str:
        """One line for a failure smtplib or ssl raised."""
        if isinstance(e, smtplib.SMTPAuthenticationError):
            return f"the mail server refused the login ({_one_line(e.smtp_code, e.smtp_error)})"
        if isinstance(e, smtplib.SMTPNotSupportedError):
            # raised by login() only: the server offers no AUTH (perhaps not before TLS)
            return (f"the mail server {self.server} offers no login (AUTH) on this "
                    f"connection: {e} (see [mail] username and security)")
        if isinstance(e, smtplib.SMTPResponseException):
            return f"the mail server {self.server} answered {_one_line(e.smtp_code, e.smtp_error)}"
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"the mail server's certificate did not verify: {e.verify_message}"
        if isinstance(e, ssl.SSLError):
            return f"TLS with the mail server {self.server} failed: {e.reason or e}"
        if isinstance(e, smtplib.SMTPServerDisconnected):
            return f"the mail server {self.server} closed the connection ({e})"
        if isinstance(e, (socket.timeout, TimeoutError)):
            return f"the mail server {self.server} did not answer within {self.timeout:g} s"
        if isinstance(e, OSError):
            return f"lost the connection to mail server {self.server}: {e.strerror or e}"
        return f"SMTP with {self.server} failed: {e}"


def _flatten(msg: EmailMessage, utf8: bool) -> bytes:
    """The message as the DATA command sends it: CRLF line ends, UTF-8 headers only
    when the server takes them (SMTPUTF8), encoded words otherwise."""
    sent = copy.copy(msg)
    del sent["Bcc"]              # the envelope carries it; the message must not
    del sent["Resent-Bcc"]
    out = io.BytesIO()
    BytesGenerator(out, policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP
                   ).flatten(sent)
    return out.getvalue()


def _one_line(code: int, answer: bytes | str) -> str:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer
    line = f"{code} {' '.join(text.split())}".strip()
    return line if len(line) <= _MAX_ANSWER else line[:_MAX_ANSWER] + "..."


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
