"""Error pages, inside wsgidav's ErrorPrinter (which is left as a last resort).

A refusal (a DAVError) is answered with its status and its reason, and with no
name or version of the software behind it (wsgidav's pages link to itself and say
its version). An exception that no layer expected becomes a bare 500, logged here
once with its traceback, and its text never reaches the client (wsgidav would put
the exception's repr into the page).
"""
import html
import logging
from collections.abc import Callable, Iterable, Iterator
from wsgiref.types import StartResponse, WSGIEnvironment

from wsgidav.dav_error import (HTTP_INTERNAL_ERROR, HTTP_NO_CONTENT, HTTP_NOT_MODIFIED,
                               DAVError, get_http_status_string)
from wsgidav.mw.base_mw import BaseMiddleware
from wsgidav.util import SubAppStartResponse, get_rfc1123_time

from strongroom.appliance.webdav.domain import current

log = logging.getLogger("strongroom.webdav")


def _log_once(environ: WSGIEnvironment, method: Callable[..., None], what: str,
              *args: object) -> None:
    current.logged = True
    method("webdav %s %r from %s: " + what, environ.get("REQUEST_METHOD"),
           environ.get("PATH_INFO", "")[:200], environ.get("REMOTE_ADDR"), *args)


def error_page(e: DAVError) -> tuple[str, bytes]:
    """(content type, body) answering `e`: its precondition as XML, or a short page."""
    if e.err_condition:
        return "application/xml; charset=utf-8", e.err_condition.as_string().encode()
    status = get_http_status_string(e)
    reason = f"<p>{html.escape(str(e.context_info))}</p>" if e.context_info else ""
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{status}</title>"
            f"</head><body><h1>{status}</h1>{reason}</body></html>")
    return "text/html; charset=utf-8", page.encode()


# wsgidav ships no types: the base class is Any to mypy.
class ErrorPages(BaseMiddleware):  # type: ignore[misc]
    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterator[bytes]:
        inner = SubAppStartResponse()
        started = False
        try:
            app_iter: Iterable[bytes] = self.next_app(environ, inner)
            try:
                for chunk in app_iter:
                    if not started:
                        start_response(inner.status, inner.response_headers, inner.exc_info)
                        started = True
                    yield chunk
            finally:
                if hasattr(app_iter, "close"):
                    app_iter.close()
        except DAVError as e:
            if started:
                raise
            yield from _answer(e, start_response)
            return
        except OSError as e:   # mostly a client gone in the middle of a body: one line
            _log_once(environ, log.info, "input/output error: %s", e)
            if started:
                raise
            yield from _answer(DAVError(HTTP_INTERNAL_ERROR), start_response)
            return
        except Exception:
            _log_once(environ, log.exception, "internal error")
            if started:
                raise
            yield from _answer(DAVError(HTTP_INTERNAL_ERROR), start_response)
            return
        if not started:
            start_response(inner.status, inner.response_headers, inner.exc_info)


def send_error(start_response: StartResponse, e: DAVError) -> list[bytes]:
    """Answer `e` at once (a refusal before wsgidav ran)."""
    return list(_answer(e, start_response))


def _answer(e: DAVError, start_response: StartResponse) -> Iterator[bytes]:
    status = get_http_status_string(e)
    if e.value in (HTTP_NOT_MODIFIED, HTTP_NO_CONTENT):
        start_response(status, [("Content-Length", "0"), ("Date", get_rfc1123_time())])
        yield b""
        return
    content_type, body = error_page(e)
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))),
                            ("Date", get_rfc1123_time())] + list(e.add_headers or []))
    yield body if e.add_body else b""
