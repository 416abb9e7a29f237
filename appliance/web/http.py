"""Requests and responses of the portal: query and form parsing with limits, cookies,
and the headers every portal response carries."""
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, quote, quote_plus
from wsgiref.types import WSGIEnvironment

from strongroom.appliance.errors import BadRequest

log = logging.getLogger("strongroom.web")

MAX_FORM = 64 * 1024        # an urlencoded form: a few fields, never a file
SESSION_COOKIE = "__Host-sr_session"
PRE_COOKIE = "__Host-sr_pre"      # the double-submit token of forms before login
LANG_COOKIE = "sr_lang"
# No inline script or style: the page's own files only, never framed, forms post here.
CSP = ("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
       "form-action 'self'; base-uri 'none'; object-src 'none'")
PAGE_HEADERS = [("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY"),
                ("Cache-Control", "no-store")]
STATUS_TEXT = {200: "OK", 204: "No Content", 206: "Partial Content", 302: "Found",
               303: "See Other", 304: "Not Modified", 400: "Bad Request",
               401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
               405: "Method Not Allowed", 409: "Conflict", 410: "Gone",
               413: "Content Too Large",
               416: "Range Not Satisfiable", 423: "Locked", 500: "Internal Server Error",
               501: "Not Implemented", 503: "Service Unavailable",
               507: "Insufficient Storage"}


class Request:
    """One portal request: method, route (the path below /web), query, cookies, and
    the body read on demand (a form, bounded; or the raw stream for uploads)."""

    def __init__(self, environ: WSGIEnvironment) -> None:
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        raw = environ.get("PATH_INFO", "") or "/"
        self.route = raw[len("/web"):] or "/"
        self.query = _single(parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        self.cookies = _cookies(environ.get("HTTP_COOKIE", ""))
        self.address: str | None = environ.get("REMOTE_ADDR")
        self._form: dict[str, str] | None = None

    def header(self, name: str) -> str:
        return str(self.environ.get("HTTP_" + name.upper().replace("-", "_"), ""))

    @property
    def content_length(self) -> int | None:
        value = self.environ.get("CONTENT_LENGTH") or ""
        return int(value) if value.isdigit() else None

    def form(self) -> dict[str, str]:
        """The urlencoded body; BadRequest when it is not one or is over MAX_FORM."""
        if self._form is None:
            kind = self.environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
            if self.method != "POST" or kind != "application/x-www-form-urlencoded":
                raise BadRequest("expected a form")
            length = self.content_length
            if length is None or length > MAX_FORM:
                raise TooBig()
            body = self.environ["wsgi.input"].read(length) if length else b""
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest("the form is not UTF-8") from None
            self._form = _single(parse_qs(text, keep_blank_values=True))
        return self._form

    def wants_json(self) -> bool:
        return "application/json" in self.header("Accept")


class TooBig(BadRequest):
    """A form body over MAX_FORM."""


@dataclass
class Response:
    status: int = 200
    body: Iterable[bytes] = ()
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "text/html; charset=utf-8"

    def status_line(self) -> str:
        return f"{self.status} {STATUS_TEXT.get(self.status, 'Unknown')}"

    def all_headers(self) -> list[tuple[str, str]]:
        out = [("Content-Type", self.content_type)] + PAGE_HEADERS
        names = {n.lower() for n, _ in self.headers}
        return [h for h in out if h[0].lower() not in names] + self.headers


def html(text: str, status: int = 200) -> Response:
    data = text.encode("utf-8")
    return Response(status, [data], [("Content-Length", str(len(data)))])


URL_SAFE = "".join(chr(c) for c in range(33, 127))     # printable ASCII but the space


def redirect(location: str, status: int = 303) -> Response:
    """A redirect; control characters (a CR LF from a `next` parameter would start a
    header of the sender's), spaces and non-ASCII in `location` go percent-encoded."""
    return Response(status, [b""], [("Location", quote(location, safe=URL_SAFE)),
                                    ("Content-Length", "0")])


def json_response(value: object, status: int = 200) -> Response:
    data = json.dumps(value).encode()
    return Response(status, [data], [("Content-Length", str(len(data)))],
                    "application/json")


def cookie(name: str, value: str, *, max_age: int | None = None, http_only: bool = True) -> \
        tuple[str, str]:
    """A Set-Cookie header: always Secure, Path=/, SameSite=Strict (and HttpOnly but for
    the language, which has nothing to hide)."""
    parts = [f"{name}={value}", "Path=/", "Secure", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return ("Set-Cookie", "; ".join(parts))


def url(route: str, **query: object) -> str:
    """/web`route`?query, with None values left out."""
    # urlencode's result, without its per-call overhead (a folder page makes two per file)
    q = "&".join(f"{k}={quote_plus(str(v))}" for k, v in query.items() if v is not None)
    return f"/web{route}" + (f"?{q}" if q else "")


def content_disposition(name: str) -> str:
    """attachment, with an ASCII fallback and the UTF-8 name (RFC 6266, RFC 5987)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _single(values: dict[str, list[str]]) -> dict[str, str]:
    return {k: v[0] for k, v in values.items()}


def _cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {k: m.value for k, m in jar.items()}


def chunks(data: Iterable[bytes]) -> Iterator[bytes]:
    yield from data
