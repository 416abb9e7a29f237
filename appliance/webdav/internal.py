"""A middleware inside wsgidav's ErrorPrinter: an exception that no layer expected
becomes a bare 500, logged here once with its traceback, and its text never reaches
the client (wsgidav would put the exception's repr into the error page)."""
import logging

from wsgidav.dav_error import HTTP_INTERNAL_ERROR, DAVError
from wsgidav.mw.base_mw import BaseMiddleware
from wsgidav.util import SubAppStartResponse

from appliance.webdav.domain import current

log = logging.getLogger("strongroom.webdav")


def _log_once(environ, method, what: str, *args) -> None:
    current.logged = True
    method("webdav %s %r from %s: " + what, environ.get("REQUEST_METHOD"),
           environ.get("PATH_INFO", "")[:200], environ.get("REMOTE_ADDR"), *args)


class HideInternalErrors(BaseMiddleware):
    def __call__(self, environ, start_response):
        inner = SubAppStartResponse()
        started = False
        try:
            app_iter = self.next_app(environ, inner)
            try:
                for chunk in app_iter:
                    if not started:
                        start_response(inner.status, inner.response_headers, inner.exc_info)
                        started = True
                    yield chunk
            finally:
                if hasattr(app_iter, "close"):
                    app_iter.close()
        except DAVError:
            raise   # answered by ErrorPrinter with the status (and the text) we chose
        except OSError as e:   # mostly a client gone in the middle of a body: one line
            _log_once(environ, log.info, "input/output error: %s", e)
            raise DAVError(HTTP_INTERNAL_ERROR, context_info="input/output error") from None
        except Exception:
            _log_once(environ, log.exception, "internal error")
            if started:
                raise
            raise DAVError(HTTP_INTERNAL_ERROR, context_info="internal error") from None
        if not started:
            start_response(inner.status, inner.response_headers, inner.exc_info)
