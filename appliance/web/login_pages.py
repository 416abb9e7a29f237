"""Logging in and out of the portal: login name or email address and password, then
the six-digit code, through the same Authenticator (throttle, single-use codes,
equal work, audit) as SFTP's keyboard-interactive login.

Between the two steps the first factor's outcome waits in this process's memory
under a random id in a cookie, for at most PENDING_SECONDS; an unanswered one
counts as a failed attempt, as a client leaving at SFTP's code prompt does. The
forms before login carry a double-submit token (a random cookie and the same value
in the form), so another site cannot log a browser in to an account of its own.
"""
import hmac
import secrets
import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from strongroom.appliance.db.models import User
from strongroom.appliance.errors import AuthFailed
from strongroom.appliance.service.login import Factor
from strongroom.appliance.service.principal import Principal
from strongroom.appliance.web.http import (PRE_COOKIE, SESSION_COOKIE, Response, cookie,
                                           redirect, url)
from strongroom.appliance.web.portal import Context, language_cookie
from strongroom.appliance.web import i18n

if TYPE_CHECKING:
    from strongroom.appliance.web.portal import Portal

PENDING_SECONDS = 300
PENDING_COOKIE = "__Host-sr_pending"
MAX_PENDING = 10000


class Pending:
    """First factors waiting for their code, by random id."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, Factor, str | None]] = {}
        self._lock = threading.Lock()

    def put(self, factor: Factor, address: str | None) -> str:
        key = secrets.token_urlsafe(24)
        with self._lock:
            self._items[key] = (time.monotonic() + PENDING_SECONDS, factor, address)
        return key

    def take(self, key: str | None) -> Factor | None:
        with self._lock:
            item = self._items.pop(key or "", None)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def expired(self) -> list[tuple[Factor, str | None]]:
        now = time.monotonic()
        with self._lock:
            old = [k for k, (t, _, _) in self._items.items() if t < now]
            if len(self._items) - len(old) > MAX_PENDING:   # bounded: oldest go first
                old += sorted(self._items, key=lambda k: self._items[k][0])[:len(self._items) // 10]
            return [self._items.pop(k)[1:] for k in set(old) if k in self._items]


def register(portal: "Portal") -> None:
    pending = Pending()

    def sweep(ctx: Context) -> None:
        for factor, address in pending.expired():
            ctx.app.auth.abandoned(factor, "web", address)

    @portal.route("GET", "/", public=True)
    def home(ctx: Context) -> Response:
        return redirect(url("/files") if ctx.login else url("/login"))

    @portal.route("GET", "/login", public=True)
    def login_form(ctx: Context) -> Response:
        if ctx.login is not None:
            return redirect(url("/files"))
        return _with_pre_token(ctx, "login.html", login="")

    @portal.route("POST", "/login", public=True)
    def login_password(ctx: Context) -> Response:
        sweep(ctx)
        form = ctx.request.form()
        if not _pre_token_ok(ctx, form.get("csrf", "")):
            return _with_pre_token(ctx, "login.html", 403, login=form.get("login", ""),
                                   error=ctx.gettext("The page was too old. Please try again."))
        name = _login_name(ctx, form.get("login", "").strip())
        try:
            factor = ctx.app.auth.first_factor(name, form.get("password", ""), "web",
                                               ctx.request.address, method="password")
        except AuthFailed:
            return _refused(ctx, form.get("login", ""))
        if not factor.needs_code and factor.principal is not None:
            return _logged_in(ctx, factor.principal, url("/account"))
        response = _with_pre_token(ctx, "code.html")
        response.headers.append(cookie(PENDING_COOKIE, pending.put(factor, ctx.request.address),
                                       max_age=PENDING_SECONDS))
        return response

    @portal.route("POST", "/login/code", public=True)
    def login_code(ctx: Context) -> Response:
        form = ctx.request.form()
        factor = pending.take(ctx.request.cookies.get(PENDING_COOKIE))
        if factor is None:
            return _with_pre_token(ctx, "login.html", 400, login="", error=ctx.gettext(
                "The login took too long or was already used. Please start again."))
        if not _pre_token_ok(ctx, form.get("csrf", "")):
            ctx.app.auth.abandoned(factor, "web", ctx.request.address)
            return _with_pre_token(ctx, "login.html", 403, login="",
                                   error=ctx.gettext("The page was too old. Please try again."))
        try:
            principal = ctx.app.auth.second_factor(factor, form.get("code", "").replace(" ", ""),
                                                   "web", ctx.request.address)
        except AuthFailed:
            return _refused(ctx, factor.login)
        return _logged_in(ctx, principal, url("/files"))

    @portal.route("POST", "/logout")
    def logout(ctx: Context) -> Response:
        ctx.app.web_sessions.end(ctx.request.cookies.get(SESSION_COOKIE, ""))
        ctx.session.audit_event("logout", None)
        response = _with_pre_token(ctx, "login.html", login="",
                                   notice=ctx.gettext("You are logged out."))
        response.headers.append(cookie(SESSION_COOKIE, "", max_age=0))
        return response

    @portal.route("GET", "/lang", public=True)
    def language(ctx: Context) -> Response:
        lang = ctx.request.query.get("to", "")
        target = ctx.request.query.get("next", "")
        if not target.startswith("/web/") or target.startswith("/web//"):
            target = url("/")
        response = redirect(target)
        if lang in i18n.languages():
            response.headers.append(language_cookie(lang))
            _remember_language(ctx, lang)
        return response


def _remember_language(ctx: Context, lang: str) -> None:
    # A logged-in user's choice is also the account's, so it follows them to another
    # browser. (A cross-site link to /lang carries no session cookie: SameSite=Strict.)
    login = ctx.login
    if login is not None and login.principal.user_id is not None and \
            ctx.app.web_sessions.set_language(login.principal.user_id, lang):
        ctx.session.audit_event("user-set", None, "ok", f"language={lang}")


def _login_name(ctx: Context, given: str) -> str:
    """The login of `given`: a login name, or the email address of exactly one user."""
    if "@" not in given:
        return given
    with ctx.app.db.read() as db:
        logins = db.scalars(select(User.login).where(
            func.lower(User.email) == given.lower()).limit(2)).all()
    return logins[0] if len(logins) == 1 else given


def _refused(ctx: Context, given: str) -> Response:
    # One answer for a wrong password, a wrong code, an unknown or blocked account.
    return _with_pre_token(ctx, "login.html", 401, login=given, error=ctx.gettext(
        "The login name, password or code was not right, or too many attempts were made. "
        "Please try again."))


def _logged_in(ctx: Context, principal: Principal, landing: str) -> Response:
    token = ctx.app.web_sessions.open(principal, ctx.request.address,
                                      ctx.request.header("User-Agent"))
    target = ctx.request.query.get("next", "")
    if not target.startswith("/web/") or target.startswith("/web//") or "/login" in target:
        target = landing
    response = redirect(target)
    response.headers += [cookie(SESSION_COOKIE, token), cookie(PENDING_COOKIE, "", max_age=0),
                         cookie(PRE_COOKIE, "", max_age=0)]
    return response


def _with_pre_token(ctx: Context, template: str, status: int = 200,
                    **context: object) -> Response:
    token = ctx.request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
    response = ctx.page(template, status, csrf=token, user=None, **context)
    response.headers.append(cookie(PRE_COOKIE, token))
    return response


def _pre_token_ok(ctx: Context, sent: str) -> bool:
    held = ctx.request.cookies.get(PRE_COOKIE, "")
    return bool(held) and hmac.compare_digest(held.encode(), sent.encode())
