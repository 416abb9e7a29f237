"""The outermost layer of the HTTPS stack: /healthz, /metrics, and counting requests.

- `GET /healthz` (or HEAD) answers 200 "ok" or 503 "not ok" (appliance.health.problem:
  the database answers, a blob can be started above the reserve), never more: a load
  balancer needs no details, and nobody else should get them. No login, so it is
  no login attempt either; never cached; the connection is closed after it, so a
  probe does not hold a place among its address's connections not logged in
  ([webdav] max_unauthenticated_per_address) between probes.
- `GET /metrics`, when [metrics] enabled and no [metrics] listen of its own.
- Every other request is counted by method and status class when metrics are on.
A request carrying credentials is always WebDAV's, so a user's own file named
`healthz` or `metrics` at the top of a tree is still theirs.
"""
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from wsgidav.util import get_rfc1123_time

from strongroom.appliance import health
from strongroom.appliance.webdav.guard import SECURITY_HEADERS, ExcInfo
from strongroom.appliance.webdav.listener import close_after_response

if TYPE_CHECKING:
    from strongroom.appliance.app import App
    from strongroom.appliance.metrics import Metrics

log = logging.getLogger("strongroom.webdav")
HEALTHZ, METRICS = "/healthz", "/metrics"
REPEAT_EVERY = 60.0      # seconds between log lines saying why /healthz is not ok
FRESH_FOR = 1.0          # seconds one look at the health is answered from memory


def probes(app: "App", inner: WSGIApplication) -> WSGIApplication:
    """`inner` (the guarded WebDAV application) behind /healthz, /metrics and the count."""
    quiet = _Quiet()

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path in (HEALTHZ, METRICS) and environ["REQUEST_METHOD"] in ("GET", "HEAD") \
                and "HTTP_AUTHORIZATION" not in environ:
            if path == HEALTHZ:
                return _healthz(app, quiet, environ, start_response)
            if app.metrics is not None and not app.config.metrics.listen:
                return _answer(start_response, "200 OK", *app.metrics.page(), environ)
        metrics = app.metrics
        if metrics is None:
            return inner(environ, start_response)
        return inner(environ, _counted(metrics, environ["REQUEST_METHOD"], start_response))
    return wsgi


def _healthz(app: "App", quiet: "_Quiet", environ: WSGIEnvironment,
             start_response: StartResponse) -> list[bytes]:
    why = quiet.problem(app)
    if why is None:
        return _answer(start_response, "200 OK", "text/plain", b"ok\n", environ)
    quiet.say(why)
    return _answer(start_response, "503 Service Unavailable", "text/plain", b"not ok\n",
                   environ)


def _answer(start_response: StartResponse, status: str, content_type: str, body: bytes,
            environ: WSGIEnvironment) -> list[bytes]:
    close_after_response(linger=False)
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store"), ("Date", get_rfc1123_time())]
                   + SECURITY_HEADERS)
    return [b"" if environ["REQUEST_METHOD"] == "HEAD" else body]


def _counted(metrics: "Metrics", method: str, start_response: StartResponse) -> StartResponse:
    def wrapped(status: str, headers: list[tuple[str, str]],
                exc_info: ExcInfo = None) -> Any:    # PEP 3333's write(), typed Any
        metrics.webdav_request(method, status)
        return start_response(status, headers, exc_info) if exc_info else \
            start_response(status, headers)
    return wrapped


class _Quiet:
    """One warning per REPEAT_EVERY while /healthz says not ok: a load balancer
    asks every few seconds."""

    def __init__(self) -> None:
        self._last = 0.0
        self._looked: tuple[float, str | None] = (-FRESH_FOR, None)

    def problem(self, app: "App") -> str | None:
        """health.problem, looked at once per FRESH_FOR at most: anyone may ask
        /healthz, as often as they like, and each look touches the database and disk."""
        at, why = self._looked
        now = time.monotonic()
        if now - at >= FRESH_FOR:
            why = health.problem(app)
            self._looked = (now, why)
        return why

    def say(self, why: str) -> None:
        now = time.monotonic()
        if now - self._last >= REPEAT_EVERY:
            self._last = now
            log.warning("/healthz answers 'not ok': %s", why)
