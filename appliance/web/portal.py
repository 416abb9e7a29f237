"""The portal's WSGI application: routes, the login check, CSRF, and its one error
boundary (domain errors become a page with the table's status; anything else a
plain 500 page and one log line, never a traceback to the browser).

Every page of a logged-in user works on one `Session` (protocol "web") made for the
request, so the rights, the audit trail and the storage are the service layer's.
"""
import hmac
import logging
import mimetypes
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from wsgiref.types import StartResponse, WSGIEnvironment

from strongroom.appliance import errors
from strongroom.appliance.service import Session
from strongroom.appliance.service.websessions import WebLogin
from strongroom.appliance.web import i18n, render
from strongroom.appliance.web.http import (LANG_COOKIE, MAX_FORM, SESSION_COOKIE, Request,
                                           Response, TooBig, cookie, html, redirect, url)
from strongroom.appliance.webdav.listener import close_after_response, mark_authenticated

if TYPE_CHECKING:
    from strongroom.appliance.app import App

log = logging.getLogger("strongroom.web")
STATIC = Path(__file__).parent / "static"

STATUS = (
    (errors.MissingParent, 409), (errors.NotFound, 404), (errors.Denied, 403),
    (errors.Unsupported, 501), (errors.QuotaExceeded, 507), (errors.TooLarge, 413),
    (errors.Cancelled, 503), (errors.Locked, 423), (errors.Conflict, 409),
    (errors.BadRequest, 400),
    (errors.CorruptData, 500), (errors.NoSpace, 507), (errors.StorageError, 500),
    (errors.AuthFailed, 401), (errors.Unavailable, 503),
)


class Context:
    """One request as a page handler sees it: the request, its language, and (for a
    logged-in user) the portal session and a service Session."""

    def __init__(self, app: "App", request: Request, lang: str,
                 login: WebLogin | None) -> None:
        self.app, self.request, self.lang, self.login = app, request, lang, login
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self.login is None:
            raise errors.AuthFailed("not logged in")
        if self._session is None:
            self._session = self.app.session(self.login.principal, "web",
                                             self.request.address, per_request=True)
        return self._session

    @property
    def csrf(self) -> str:
        return self.login.csrf if self.login is not None else ""

    def page(self, template: str, status: int = 200, **context: object) -> Response:
        context.setdefault("user", self.login.principal if self.login else None)
        context.setdefault("csrf", self.csrf)
        context.setdefault("here", self.here())
        return html(render.page(self.lang, template, **context), status)

    def message(self, heading: str, text: str, status: int = 200,
                back: str | None = None) -> Response:
        return self.page("message.html", status, heading=heading, text=text, back=back)

    def here(self) -> str:
        query = self.request.environ.get("QUERY_STRING", "")
        return f"/web{self.request.route}" + (f"?{query}" if query else "")

    def gettext(self, text: str, **values: object) -> str:
        return i18n.translations(self.lang).gettext(text) % values if values else \
            i18n.translations(self.lang).gettext(text)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


Handler = Callable[[Context], Response]


class Portal:
    """The WSGI application behind /web/."""

    def __init__(self, app: "App") -> None:
        from strongroom.appliance.web import (account_pages, file_pages, invite_pages,
                                              login_pages)
        self.app = app
        self.public: dict[tuple[str, str], Handler] = {}
        self.private: dict[tuple[str, str], Handler] = {}
        for module in (login_pages, file_pages, account_pages, invite_pages):
            module.register(self)

    def route(self, method: str, path: str, *, public: bool = False) -> Callable[[Handler], Handler]:
        def add(handler: Handler) -> Handler:
            (self.public if public else self.private)[(method, path)] = handler
            return handler
        return add

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        login = self.app.web_sessions.find(request.cookies.get(SESSION_COOKIE))
        if login is not None:
            mark_authenticated()
        lang = i18n.choose(request.cookies.get(LANG_COOKIE), login.language if login else None,
                           request.header("Accept-Language"))
        ctx = Context(self.app, request, lang, login)
        try:
            response = self._answer(ctx)
        except Exception as e:     # a bug: one log line, a plain page, never a traceback
            log.error("web: %s %s failed: %s: %s", request.method, request.route,
                      type(e).__name__, e, exc_info=log.isEnabledFor(logging.DEBUG))
            close_after_response()
            response = html("<!doctype html><title>Error</title><h1>Internal error</h1>"
                            "<p>The server could not answer this request.</p>", 500)
        finally:
            ctx.close()
        start_response(response.status_line(), response.all_headers())
        return response.body

    def _answer(self, ctx: Context) -> Response:
        request = ctx.request
        if request.route.startswith("/static/"):
            return static(request.route[len("/static/"):])
        key = (request.method if request.method != "HEAD" else "GET", request.route.rstrip("/") or "/")
        handler = self.public.get(key)
        if handler is None and key in self.private:
            if ctx.login is None:
                return self._login_first(ctx)
            try:
                if request.method == "POST" and not self._csrf_ok(ctx):
                    return self._forged(ctx)
            except TooBig:      # the token is in a form too large to read
                return self._too_big(ctx)
            handler = self.private[key]
        if handler is None:
            known = {m for m, p in (*self.public, *self.private) if p == key[1]}
            return (ctx.message(ctx.gettext("Not found"), ctx.gettext(
                "There is no such page."), 404) if not known else
                ctx.message(ctx.gettext("Not allowed"), ctx.gettext(
                    "This page cannot be used that way."), 405))
        try:
            return handler(ctx)
        except TooBig:
            return self._too_big(ctx)
        except errors.StrongroomError as e:
            return self._error_page(ctx, e)

    def _too_big(self, ctx: Context) -> Response:
        log.info("web: %s %s from %s: 413 form over %d bytes", ctx.request.method,
                 ctx.request.route, ctx.request.address, MAX_FORM)
        close_after_response()
        return ctx.message(ctx.gettext("Too large"), ctx.gettext(
            "The form sent was too large."), 413)

    def _csrf_ok(self, ctx: Context) -> bool:
        sent = ctx.request.header("X-CSRF-Token")
        if not sent:
            kind = ctx.request.environ.get("CONTENT_TYPE", "")
            if kind.startswith("multipart/"):
                return True      # checked by the upload before any file part (file_pages)
            try:
                sent = ctx.request.form().get("csrf", "")
            except TooBig:
                raise
            except errors.BadRequest:
                return False
        return hmac.compare_digest(sent.encode(), ctx.csrf.encode())

    def _forged(self, ctx: Context) -> Response:
        ctx.session.audit_event("csrf-refused", None, "denied",
                                f"{ctx.request.method} {ctx.request.route}")
        log.warning("web: refused a %s %s without its form token from %s",
                    ctx.request.method, ctx.request.route, ctx.request.address)
        close_after_response()
        return ctx.message(ctx.gettext("Refused"), ctx.gettext(
            "This form was not sent from a page of this portal, or the page was too old. "
            "Go back, reload the page and try again."), 403)

    def _login_first(self, ctx: Context) -> Response:
        if ctx.request.method == "GET":
            return redirect(url("/login", next=ctx.here()), 303)
        close_after_response()
        if ctx.request.wants_json():
            from strongroom.appliance.web.http import json_response
            return json_response({"error": ctx.gettext("Your session has ended. Log in again.")}, 401)
        return ctx.message(ctx.gettext("Logged out"), ctx.gettext(
            "Your session has ended. Log in again."), 401, back=url("/login"))

    def _error_page(self, ctx: Context, e: errors.StrongroomError) -> Response:
        status = next((code for cls, code in STATUS if isinstance(e, cls)), 500)
        detail = ("stored data failed its integrity check; not served"
                  if isinstance(e, errors.CorruptData) else str(e))
        log.info("web: %s %s by %s: %d %s", ctx.request.method, ctx.request.route,
                 ctx.login.principal.login if ctx.login else "-", status, detail)
        explained = _explain(ctx, e)
        if ctx.request.wants_json():
            from strongroom.appliance.web.http import json_response
            return json_response({"error": explained, "detail": detail}, status)
        return ctx.page("message.html", status, heading=ctx.gettext("Could not be done"),
                        text=explained, detail=detail if detail != explained else None,
                        back=_folder_of(ctx))


def _explain(ctx: Context, e: errors.StrongroomError) -> str:
    """What went wrong, in the page's language (the service's own words are English and
    are shown beneath, as the detail)."""
    if isinstance(e, errors.MissingParent):
        return ctx.gettext("The folder to put it in does not exist (any more).")
    if isinstance(e, errors.NotFound):
        return ctx.gettext("There is no such file or folder, or you may not see it.")
    if isinstance(e, errors.Denied):
        return ctx.gettext("You do not have the right to do this here.")
    if isinstance(e, errors.QuotaExceeded):
        return ctx.gettext("There is not enough room left in this storage quota.")
    if isinstance(e, errors.TooLarge):
        return ctx.gettext("The file is larger than this server accepts.")
    if isinstance(e, errors.NoSpace):
        return ctx.gettext("The server is running out of disk space. Nothing was changed.")
    if isinstance(e, errors.Conflict):
        return ctx.gettext("This clashes with what is there already (a file or folder of "
                           "that name, or a change made at the same moment).")
    if isinstance(e, errors.BadRequest):
        return ctx.gettext("The request was not valid.")
    if isinstance(e, errors.AuthFailed):
        return ctx.gettext("Your session has ended. Log in again.")
    return ctx.gettext("The server could not do this. Nothing was changed; try again later.")


def _folder_of(ctx: Context) -> str:
    """A link back: the folder of the page's `p`, else the files page."""
    path = ctx.request.query.get("p", "")
    if not path.startswith("/") or len(path) > 4096:
        return url("/files")
    if ctx.request.route in ("/files",):
        path = path.rsplit("/", 1)[0] or "/"
    elif ctx.request.route not in ("/upload", "/mkdir", "/zip"):
        path = path.rsplit("/", 1)[0] or "/"
    return url("/files", p=path)


def static(name: str) -> Response:
    """A file of the portal's own (package data), never a user's."""
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return Response(404, [b"not found"], [("Content-Length", "9")], "text/plain")
    data = path.read_bytes()
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(200, [data], [("Content-Length", str(len(data))),
                                  ("Cache-Control", "public, max-age=3600")],
                    kind + ("; charset=utf-8" if kind.startswith("text/") or kind.endswith("javascript") else ""))


def language_cookie(lang: str) -> tuple[str, str]:
    return cookie(LANG_COOKIE, lang, max_age=365 * 86400, http_only=False)
