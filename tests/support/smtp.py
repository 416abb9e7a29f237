"""A real SMTP server for the tests (aiosmtpd), on 127.0.0.1 and a free port.

    with SmtpServer(tmp_path) as smtp:          # STARTTLS and AUTH on, as a provider has
        ...point [mail] at smtp.host, smtp.port, user smtp.login, smtp.password_file...
        got = smtp.wait_for(1)                  # list[Received]: envelope + EmailMessage

By default it offers STARTTLS with a self-signed certificate for 127.0.0.1 and
localhost (`cert_file`: point SSL_CERT_FILE at it to make a verifying client trust it),
requires it before MAIL, and requires AUTH (PLAIN or LOGIN) of `login`/`password`
after it. `tls=True` speaks TLS from the first byte instead (port 465 style);
`starttls=False` offers no STARTTLS at all (and then AUTH without TLS);
`require_starttls=False` takes mail in plain text too.

Switches, changeable while it runs: `refuse_auth` (every login fails with 535),
`refused_recipients` (addresses answered 550 at RCPT). `stop()` and `start()` take it
down and bring it back on the same port, to simulate an outage. Every accepted
message is in `messages`, in order.
"""
import datetime
import email
import email.policy
import ipaddress
import logging
import os
import socket
import ssl
import threading
import time
import warnings
from dataclasses import dataclass
from email.message import EmailMessage
from itertools import count
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"
WAIT = 30.0          # seconds wait_for waits at most
# aiosmtpd's own log: its warnings repeat per connection what this module says once;
# errors (a session that failed, e.g. a client refusing the certificate) are kept
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope as the client gave it, the bytes as they came,
    and those parsed (email.policy.default)."""
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    peer_tls: bool          # whether it came over TLS (STARTTLS or implicit)


class SmtpServer:
    def __init__(self, directory: Path, *, tls: bool = False, starttls: bool = True,
                 require_starttls: bool = True, login: str = "mailer",
                 password: str = "Smtp-secret-1") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host, self.port = HOST, _free_port()
        self.tls, self.starttls = tls, starttls and not tls
        self.require_starttls = require_starttls and self.starttls
        self.login, self.password = login, password
        self.password_file = self.directory / "smtp-password"
        self.password_file.write_text(password + "\n")
        os.chmod(self.password_file, 0o600)
        self.cert_file, self.key_file = _self_signed(self.directory)
        self.refuse_auth = False
        self.refused_recipients: set[str] = set()
        self.messages: list[Received] = []
        self._changed = threading.Condition()
        self._queue_ids = count(1)
        self._controller: Controller | None = None

    # -- running --------------------------------------------------------------------

    def start(self) -> "SmtpServer":
        assert self._controller is None, "already running"
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        self._controller = _Controller(
            _Handler(self), hostname=self.host, port=self.port, server_hostname="smtp.test",
            ssl_context=context if self.tls else None,
            tls_context=context if self.starttls else None,
            require_starttls=self.require_starttls,
            authenticator=self._authenticate, auth_required=True,
            # implicit TLS is TLS too, but aiosmtpd only counts STARTTLS as such
            auth_require_tls=self.starttls, ready_timeout=10.0)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Close the listening port (connections refused) until start()."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "SmtpServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the tests look at -----------------------------------------------------

    def wait_for(self, n: int, timeout: float = WAIT) -> list[Received]:
        """The first `n` messages accepted, once there are that many; AssertionError
        naming how many came if they do not within `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} messages, got {len(self.messages)} "
                                         f"within {timeout:g} s")
                self._changed.wait(left)
            return self.messages[:n]

    def mail_options(self, *, security: str | None = None,
                     verify_certificate: bool = False) -> dict[str, object]:
        """The [mail] options that reach this server as its user (sender files@firm.test)."""
        return {"host": self.host, "port": self.port,
                "security": security or ("tls" if self.tls else "starttls"),
                "username": self.login, "password_file": str(self.password_file),
                "sender": "Strongroom <files@firm.test>",
                "verify_certificate": verify_certificate}

    # -- aiosmtpd's hooks -----------------------------------------------------------

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: object) -> AuthResult:
        ok = (not self.refuse_auth and isinstance(auth_data, LoginPassword)
              and auth_data.login == self.login.encode()
              and auth_data.password == self.password.encode())
        return AuthResult(success=ok, handled=False)

    def _accept(self, envelope: Envelope, tls: bool) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        queue_id = f"T{next(self._queue_ids):05d}"
        with self._changed:
            self.messages.append(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos),
                                          raw, parsed, tls))
            self._changed.notify_all()
        return f"250 2.0.0 Ok: queued as {queue_id}"


class _Controller(Controller):
    def factory(self) -> SMTP:
        # aiosmtpd warns, per connection, that AUTH without STARTTLS is unsafe: said
        # once in the docstring above (implicit TLS is not plain text, starttls=False is
        # meant to be)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return SMTP(self.handler, **self.SMTP_kwargs)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address.lower() in {a.lower() for a in self.server.refused_recipients}:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.server._accept(envelope, self.server.tls or session.ssl is not None)


def _free_port() -> int:
    """A loopback port free a moment ago, in the ephemeral range (the daemons' ports
    are below it, tests/support/daemon.free_ports)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost signed by its own key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "strongroom test smtp")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_file, 0o600)
    return cert_file, key_file
