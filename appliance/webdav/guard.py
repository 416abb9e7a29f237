"""Checks in front of wsgidav: requests refused or answered before any DAV work.

Each refusal is a complete 4xx with a short body and one log line:
- paths that climb above the root or are not UTF-8 (wsgidav 4.4 detects these
  but sends the error from inside a generator, dropping the body: clients hang),
  in the request line and in a Destination header alike;
- XML request bodies announced over MAX_XML_BODY (wsgidav reads them whole into
  memory); a chunked one is read, bounded, only once its request has logged in
  (ChunkedXmlBody, inside wsgidav after the authenticator);
- PROPFIND with Depth: infinity (RFC 4918 9.1: a server may refuse it, with
  the DAV:propfind-finite-depth precondition; a large tree would be walked whole);
- a malformed X-OC-Mtime is dropped rather than failing the upload;
- a Basic Authorization header that is not base64 of UTF-8 'login:password'.
Every response carries X-Content-Type-Options: nosniff and Content-Security-Policy:
sandbox, and a user's HTML, SVG or XML file is sent as an attachment: the portal
will share this origin, and a file must never run as a page of it. An error
answered before its request's body was read closes the connection instead of
reading the body (a login refused, say: nothing is read for someone not logged in).
An OPTIONS request without credentials is answered here: the Windows WebDAV
redirector probes the server that way before it offers to log in.
"""
import base64
import binascii
import io
import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit, urlunsplit
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from wsgidav import util
from wsgidav.mw.base_mw import BaseMiddleware
from wsgidav.dav_error import (HTTP_BAD_REQUEST, HTTP_FORBIDDEN,
                               PRECONDITION_CODE_PropfindFiniteDepth, DAVError)

from strongroom.appliance.service.entry import LATEST_MTIME
from strongroom.appliance.webdav.body import use_socket_body
from strongroom.appliance.webdav.internal import send_error
from strongroom.appliance.webdav.domain import current
from strongroom.appliance.webdav.listener import close_after_response

log = logging.getLogger("strongroom.webdav")

MAX_XML_BODY = 1024 * 1024
HTTP_TOO_LARGE = 413
XML_METHODS = {"PROPFIND", "PROPPATCH", "LOCK", "UNLOCK", "REPORT", "SEARCH"}
ALLOW = ("OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, "
         "LOCK, UNLOCK")


SECURITY_HEADERS = [("X-Content-Type-Options", "nosniff"),
                    ("Content-Security-Policy", "sandbox")]
# The third argument of a WSGI start_response (PEP 3333).
ExcInfo: TypeAlias = (tuple[type[BaseException], BaseException, TracebackType]
                      | tuple[None, None, None] | None)


def guard(dav_app: WSGIApplication) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response = _secured(environ, start_response)
        current.logged = False
        refusal = _path_refusal(environ) or _destination_refusal(environ) or \
            _auth_refusal(environ) or _body_refusal(environ) or _depth_refusal(environ)
        if refusal is not None:
            _log(environ, refusal)
            return send_error(start_response, refusal)
        if environ["REQUEST_METHOD"] == "OPTIONS" and "HTTP_AUTHORIZATION" not in environ:
            return _anonymous_options(start_response)
        _drop_bad_mtime(environ)
        _strip_destination_login(environ)
        if environ["REQUEST_METHOD"] == "PUT":
            use_socket_body(environ)
        return dav_app(environ, _logging_start_response(environ, start_response))
    return app


def _secured(environ: WSGIEnvironment, start_response: StartResponse) -> StartResponse:
    def wrapped(status: str, headers: list[tuple[str, str]],
                exc_info: ExcInfo = None) -> Any:    # PEP 3333's write(), typed Any
        headers = list(headers) + SECURITY_HEADERS
        if int(status[:3]) >= 400 and body_unread(environ):
            close_after_response()
        return start_response(status, headers, exc_info) if exc_info else \
            start_response(status, headers)
    return wrapped


def body_unread(environ: WSGIEnvironment) -> bool:
    """Whether some of the request's body has not been read."""
    remaining: int | None = getattr(environ.get("wsgi.input"), "remaining", None)
    if remaining is not None:
        return remaining > 0
    return "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


def _logging_start_response(environ: WSGIEnvironment,
                            start_response: StartResponse) -> StartResponse:
    """One log line for an error answered inside wsgidav (malformed XML, say) that no
    layer of ours has logged; 401 is the routine login challenge and is not logged."""
    def wrapped(status: str, headers: list[tuple[str, str]],
                exc_info: ExcInfo = None) -> Any:    # PEP 3333's write(), typed Any
        code = int(status.split(" ", 1)[0])
        if code >= 400 and code != 401 and not current.logged:
            current.logged = True
            log.info("webdav %s %r from %s: %s", environ.get("REQUEST_METHOD"),
                     environ.get("PATH_INFO", "")[:200], environ.get("REMOTE_ADDR"), status)
        return start_response(status, headers, exc_info) if exc_info else \
            start_response(status, headers)
    return wrapped


def _log(environ: WSGIEnvironment, err: DAVError) -> None:
    current.logged = True
    log.info("webdav %s %r from %s refused: %s %s", environ.get("REQUEST_METHOD"),
             environ.get("PATH_INFO", "")[:200], environ.get("REMOTE_ADDR"), err.value,
             err.context_info or "")


def _path_refusal(environ: WSGIEnvironment) -> DAVError | None:
    path = environ.get("PATH_INFO", "")
    if path == "*":
        return None
    try:
        util.normalize_path(util.re_encode_wsgi(path))
    except DAVError as e:
        return DAVError(HTTP_BAD_REQUEST, context_info=e.context_info or "bad path")
    except UnicodeError:
        return DAVError(HTTP_BAD_REQUEST, context_info="path is not valid UTF-8")
    return None


def _destination_refusal(environ: WSGIEnvironment) -> DAVError | None:
    """A Destination whose path is not UTF-8 or climbs above the root."""
    dest = environ.get("HTTP_DESTINATION")
    if not dest:
        return None
    path = urlsplit(dest).path
    try:
        unquote(path, errors="strict")
        util.normalize_path(unquote(path))
    except UnicodeError:
        return DAVError(HTTP_BAD_REQUEST, context_info="destination is not valid UTF-8")
    except DAVError as e:
        return DAVError(HTTP_BAD_REQUEST, context_info=e.context_info or "bad destination")
    return None


def _auth_refusal(environ: WSGIEnvironment) -> DAVError | None:
    header = environ.get("HTTP_AUTHORIZATION")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        credentials = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        credentials = ""
    if ":" not in credentials:
        return DAVError(HTTP_BAD_REQUEST, context_info="malformed Authorization header")
    return None


def _body_refusal(environ: WSGIEnvironment) -> DAVError | None:
    """Refuse XML bodies announced over MAX_XML_BODY (before reading any)."""
    length = environ.get("CONTENT_LENGTH", "").strip()
    if environ["REQUEST_METHOD"] in XML_METHODS and length.isdigit() \
            and int(length) > MAX_XML_BODY:
        return DAVError(HTTP_TOO_LARGE, context_info=f"XML body over {MAX_XML_BODY} bytes")
    return None


# wsgidav ships no types: the base class is Any to mypy.
class ChunkedXmlBody(BaseMiddleware):  # type: ignore[misc]
    """Inside wsgidav, after login: a chunked XML body is read (at most MAX_XML_BODY)
    so that wsgidav sees a length; a larger one is refused with 413."""

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] in XML_METHODS and not environ.get("CONTENT_LENGTH") \
                and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            body = environ["wsgi.input"].read(MAX_XML_BODY + 1)
            if len(body) > MAX_XML_BODY:
                refusal = DAVError(HTTP_TOO_LARGE, context_info=f"XML body over "
                                                                f"{MAX_XML_BODY} bytes")
                _log(environ, refusal)
                return send_error(start_response, refusal)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        answer: Iterable[bytes] = self.next_app(environ, start_response)
        return answer


def _depth_refusal(environ: WSGIEnvironment) -> DAVError | None:
    if environ["REQUEST_METHOD"] == "PROPFIND" and \
            environ.get("HTTP_DEPTH", "infinity").strip().lower() == "infinity":
        return DAVError(HTTP_FORBIDDEN, context_info="Depth: infinity is not supported",
                        err_condition=PRECONDITION_CODE_PropfindFiniteDepth)
    return None


def _anonymous_options(start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("DAV", "1, 2"), ("MS-Author-Via", "DAV"), ("Allow", ALLOW),
                              ("Content-Length", "0"), ("Date", util.get_rfc1123_time())])
    return [b""]


def _strip_destination_login(environ: WSGIEnvironment) -> None:
    """lftp sends 'Destination: https://user:pass@host/...'; wsgidav would then see
    another host and refuse the MOVE with 502. The login part names no resource."""
    dest = environ.get("HTTP_DESTINATION")
    if dest and "@" in dest:
        parts = urlsplit(dest)
        if "@" in parts.netloc:
            environ["HTTP_DESTINATION"] = urlunsplit(
                parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _drop_bad_mtime(environ: WSGIEnvironment) -> None:
    value = environ.get("HTTP_X_OC_MTIME")
    if value is not None and not (value.strip().isdigit() and
                                  int(value.strip()) <= LATEST_MTIME):
        log.info("webdav %s: ignoring malformed X-OC-Mtime %r", environ.get("PATH_INFO"),
                 value[:40])
        del environ["HTTP_X_OC_MTIME"]
