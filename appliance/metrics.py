"""Prometheus metrics of a running daemon ([metrics] enabled; off by default).

Counted where each thing is decided, once for every protocol: logins in the
authenticator (session.login), bytes and upload durations in the service
layer's transfers (session.transfer), long-lived sessions by the Session
(SFTP connections) and logged-in WebDAV connections by the HTTPS listener;
requests per adapter, at its one boundary (the WebDAV probes middleware, the
SFTP subsystem's `_guarded`). With metrics off `app.metrics` is None and each
of those places does nothing more than look at that attribute.

Served at /metrics on the WebDAV port, or by a separate plain-HTTP listener at
[metrics] listen (prometheus_client's own server).
"""
import logging
from collections.abc import Callable
from importlib.metadata import version
from typing import TYPE_CHECKING

from strongroom.appliance.errors import Unavailable
from strongroom.config.converters import host_port

if TYPE_CHECKING:   # imported when metrics are turned on: the CLI never loads it
    from prometheus_client import Counter

    from strongroom.appliance.app import App

log = logging.getLogger("strongroom")

# Upload durations: from a small file on a LAN to a large one over a slow line.
UPLOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
WEBDAV_METHODS = frozenset(("OPTIONS", "GET", "HEAD", "PUT", "DELETE", "PROPFIND", "PROPPATCH",
                            "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "POST"))


class Metrics:
    """The daemon's metrics, in a registry of their own."""

    def __init__(self) -> None:
        from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram,
                                       ProcessCollector, disable_created_metrics)
        disable_created_metrics()     # a *_created series per label set is noise here
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter("strongroom_requests", "Requests by protocol, operation "
                                "(WebDAV method, SFTP request) and outcome (WebDAV: status "
                                "class; SFTP: ok, refused, malformed, error)",
                                ("protocol", "operation", "outcome"), registry=r)
        self.logins = Counter("strongroom_logins", "Logins by protocol and outcome (ok, "
                              "failed, throttled: refused while blocked)",
                              ("protocol", "outcome"), registry=r)
        self.delays = Counter("strongroom_login_delays", "Login attempts made to wait "
                              "([auth] delay) after repeated failures", ("protocol",),
                              registry=r)
        self.bytes = Counter("strongroom_transferred_bytes", "File content received (up) "
                             "and sent (down) by protocol", ("protocol", "direction"),
                             registry=r)
        self.sessions = Gauge("strongroom_active_sessions", "Logged-in SFTP connections "
                              "and WebDAV connections that carried a logged-in request",
                              ("protocol",), registry=r)
        self.uploads = Histogram("strongroom_upload_duration_seconds", "From the start of "
                                 "an upload to its commit, for committed uploads",
                                 ("protocol",), buckets=UPLOAD_BUCKETS, registry=r)
        Gauge("strongroom_info", "The running version", ("version",),
              registry=r).labels(version("strongroom")).set(1)

    def request(self, protocol: str, operation: str, outcome: str) -> None:
        self.requests.labels(protocol, operation, outcome).inc()

    def webdav_request(self, method: str, status: str) -> None:
        """`status`: the response's status line ('207 Multi-Status')."""
        self.request("webdav", method if method in WEBDAV_METHODS else "other",
                     f"{status[:1]}xx")

    def login(self, protocol: str, outcome: str) -> None:
        self.logins.labels(protocol, outcome).inc()

    def meter(self, protocol: str, direction: str) -> "Counter":
        """The counter child that one transfer adds its bytes to (`.inc(n)`)."""
        return self.bytes.labels(protocol, direction)

    def page(self) -> tuple[str, bytes]:
        """(content type, body) of the metrics page."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        return CONTENT_TYPE_LATEST, generate_latest(self.registry)


def serve(app: "App") -> Callable[[], None]:
    """Turn metrics on for `app` if [metrics] enabled; with [metrics] listen, start
    their own listener. Returns a function stopping it (nothing to stop otherwise)."""
    cfg = app.config.metrics
    if not cfg.enabled:
        return lambda: None
    metrics = Metrics()
    app.enable_metrics(metrics)
    if not cfg.listen:
        return lambda: None
    from prometheus_client import start_http_server
    host, port = host_port(cfg.listen)
    try:
        server, _thread = start_http_server(port, host, registry=metrics.registry)
    except OSError as e:
        raise Unavailable(f"cannot listen on {cfg.listen} ([metrics] listen): "
                          f"{e.strerror or e}") from None
    log.info("serving metrics on http://%s/metrics", cfg.listen)
    return server.shutdown
