"""Which application answers a request on the HTTPS port: the portal or WebDAV.

A request carrying credentials (an Authorization header) is always WebDAV's, so a
user's own folder named `web` at the top of a tree stays reachable by drives.
Without one, /web and everything below it is the portal's (when [web] enabled; 404
when it is off),
and a browser asking for `/` (a GET or HEAD that prefers text/html) is sent to
/web/. Every WebDAV client keeps getting what it got before.
"""
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from strongroom.appliance.webdav.body import use_socket_body
from strongroom.appliance.webdav.guard import ExcInfo, body_unread
from strongroom.appliance.webdav.listener import close_after_response


def front(portal: WSGIApplication | None, dav: WSGIApplication) -> WSGIApplication:
    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if "HTTP_AUTHORIZATION" in environ:
            return dav(environ, start_response)
        path = environ.get("PATH_INFO", "")
        if portal is None:
            # a portal turned off is not there at all (not a WebDAV login prompt)
            return _not_found(environ, start_response) if path == "/web" or \
                path.startswith("/web/") else dav(environ, start_response)
        if path == "/web" or path.startswith("/web/"):
            if environ.get("REQUEST_METHOD") == "POST":
                use_socket_body(environ)
            return portal(environ, _closing(environ, start_response))
        if path == "/" and environ.get("REQUEST_METHOD") in ("GET", "HEAD") and \
                prefers_html(environ.get("HTTP_ACCEPT", "")):
            start_response("302 Found", [("Location", "/web/"), ("Content-Length", "0"),
                                         ("Cache-Control", "no-store")])
            return [b""]
        return dav(environ, start_response)
    return wsgi


def _not_found(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    _closing(environ, start_response)("404 Not Found", [
        ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "10"),
        ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")])
    return [b"not found\n"]


def prefers_html(accept: str) -> bool:
    """Whether text/html is among the most wanted types of an Accept header."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        kind, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if kind:
            weights[kind.lower()] = q
    best = max(weights.values(), default=0.0)
    return best > 0 and weights.get("text/html", 0.0) == best


def _closing(environ: WSGIEnvironment, start_response: StartResponse) -> StartResponse:
    """An error answered before its request's body was read closes the connection."""
    def wrapped(status: str, headers: list[tuple[str, str]], exc_info: ExcInfo = None) -> Any:
        if int(status[:3]) >= 400 and body_unread(environ):
            close_after_response()
        return start_response(status, headers, exc_info) if exc_info else \
            start_response(status, headers)
    return wrapped
