"""The account page (change the password, enrol TOTP, app passwords, drive sessions
and portal sessions) and the Connect page (how to reach the same files from a
network drive or an SFTP program).

Every change is a call on appliance.service.account.Account, which checks, stores
and audits it; a page only turns forms into those calls and their refusals into a
message on the page. After a change the browser is sent back to the page (so a
reload posts nothing twice), except after creating an app password, whose secret is
shown on the answer to that post only.
"""
import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import segno
from markupsafe import Markup

from strongroom.appliance import errors
from strongroom.appliance.service.account import Account
from strongroom.appliance.service.websessions import WebLogin
from strongroom.appliance.web.http import Response, redirect, url
from strongroom.appliance.web.portal import Context

if TYPE_CHECKING:
    from strongroom.appliance.web.portal import Portal

# The changes the page says were made after redirecting (?done=..., the words are
# in account.html).
DONE = ("password", "totp", "revoked", "drive", "session")


def register(portal: "Portal") -> None:
    @portal.route("GET", "/account")
    def account(ctx: Context) -> Response:
        done = ctx.request.query.get("done", "")
        return _account_page(ctx, done=done if done in DONE else None)

    @portal.route("POST", "/account/password")
    def change_password(ctx: Context) -> Response:
        form = ctx.request.form()
        if form.get("new", "") != form.get("repeat", ""):
            return _account_page(ctx, 400, error=ctx.gettext(
                "The two new passwords are not the same."))
        return _done(ctx, "password", lambda a: a.change_password(
            form.get("current", ""), form.get("code", ""), form.get("new", ""),
            keep_web_session=_login(ctx).session_id))

    @portal.route("POST", "/account/totp")
    def enrol_totp(ctx: Context) -> Response:
        form = ctx.request.form()
        return _done(ctx, "totp", lambda a: a.confirm_totp(
            _login(ctx).session_id, form.get("current", ""), form.get("code", "")))

    @portal.route("POST", "/account/app-passwords")
    def create_app_password(ctx: Context) -> Response:
        try:
            created = _account(ctx).create_app_password(ctx.request.form().get("label", ""))
        except (errors.BadRequest, errors.Conflict) as e:
            return _account_page(ctx, 400, error=str(e))
        return _account_page(ctx, created=created)

    @portal.route("POST", "/account/notify")
    def set_notify_frequency(ctx: Context) -> Response:
        frequency = ctx.request.form().get("frequency", "")
        return _done(ctx, "notify", lambda a: a.set_notify_frequency(frequency))

    @portal.route("POST", "/account/app-passwords/revoke")
    def revoke_app_password(ctx: Context) -> Response:
        label = ctx.request.form().get("label", "")
        return _done(ctx, "revoked", lambda a: a.revoke_app_password(label))

    @portal.route("POST", "/account/drive-sessions/end")
    def end_drive_session(ctx: Context) -> Response:
        number = _number(ctx.request.form().get("id", ""))
        return _done(ctx, "drive", lambda a: a.end_drive_session(number))

    @portal.route("POST", "/account/sessions/end")
    def end_web_session(ctx: Context) -> Response:
        number = _number(ctx.request.form().get("id", ""))
        if number == _login(ctx).session_id:
            return _account_page(ctx, 400, error=ctx.gettext(
                "To end this browser session, log out."))
        return _done(ctx, "session", lambda a: a.end_web_session(number))

    @portal.route("GET", "/connect")
    def connect(ctx: Context) -> Response:
        return ctx.page("connect.html", 200, totp=_account(ctx).has_totp(), **connection(ctx))


def _login(ctx: Context) -> WebLogin:
    if ctx.login is None:
        raise errors.AuthFailed("not logged in")
    return ctx.login


def _account(ctx: Context) -> Account:
    return Account(ctx.app, _login(ctx).principal, "web", ctx.request.address)


def _number(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise errors.BadRequest("not a session number")
    return int(text)


def _done(ctx: Context, what: str, change: Callable[[Account], None]) -> Response:
    """Make `change`; back to the page saying so, or the page with the refusal."""
    try:
        change(_account(ctx))
    except errors.AuthFailed:
        return _account_page(ctx, 403, error=ctx.gettext(
            "The current password or the code was not right, or too many attempts were "
            "made. Nothing was changed."))
    except (errors.BadRequest, errors.Conflict, errors.NotFound) as e:
        return _account_page(ctx, 400, error=str(e))
    return redirect(url("/account", done=what))


def _account_page(ctx: Context, status: int = 200, **context: object) -> Response:
    account, login = _account(ctx), _login(ctx)
    enrolment = None if account.has_totp() else account.start_totp(login.session_id)
    qr = None
    if enrolment is not None:
        qr = Markup(segno.make(enrolment.uri, error="m").svg_inline(
            scale=4, omitsize=True, light="#fff", title=ctx.gettext("QR code")))
    context.setdefault("done", None)
    context.setdefault("created", None)
    return ctx.page("account.html", status, sessions=account.web_sessions(),
                    this=login.session_id, drives=account.drive_sessions(),
                    app_passwords=account.app_passwords(), enrolment=enrolment, qr=qr,
                    frequency=account.notify_frequency(), frequencies=_frequencies(ctx),
                    **context)


def _frequencies(ctx: Context) -> list[tuple[str, str]]:
    """The choices of how often to hear of new documents, named in the page's language."""
    return [("immediate", ctx.gettext("As soon as they arrive (one email per batch)")),
            ("hourly", ctx.gettext("At most once an hour")),
            ("daily", ctx.gettext("Once a day")), ("weekly", ctx.gettext("Once a week")),
            ("off", ctx.gettext("Never"))]


# -- the Connect page --------------------------------------------------------------------

def connection(ctx: Context) -> dict[str, object]:
    """What a client program needs: addresses, and the fingerprints to check."""
    cfg = ctx.app.config
    host = cfg.server.public_name or cfg.server.host
    url_host = f"[{host}]" if ":" in host else host
    return {"host": host, "webdav_url": f"https://{url_host}:{cfg.server.webdav_port}/",
            "webdav_port": cfg.server.webdav_port, "sftp_port": cfg.server.sftp_port,
            "host_keys": [(kind, fp) for kind, path in
                          (("ED25519", cfg.ssh.host_key_ed25519), ("RSA", cfg.ssh.host_key_rsa))
                          if (fp := ssh_fingerprint(Path(path))) is not None],
            "tls_fingerprint": tls_fingerprint(Path(cfg.tls.cert_file))}


def ssh_fingerprint(private_key: Path) -> str | None:
    """SHA256:... of a host key, as OpenSSH prints it (from its .pub file, else the key)."""
    try:
        line = Path(f"{private_key}.pub").read_text().split()
        blob = base64.b64decode(line[1])
    except (OSError, IndexError, ValueError):
        try:
            from cryptography.hazmat.primitives import serialization
            key = serialization.load_ssh_private_key(private_key.read_bytes(), None)
            blob = base64.b64decode(key.public_key().public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).split()[1])
        except (OSError, ValueError, TypeError, IndexError):
            return None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def tls_fingerprint(cert_file: Path) -> str | None:
    """The SHA-256 fingerprint of the certificate (the first of the chain), AA:BB:..."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return None
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()
