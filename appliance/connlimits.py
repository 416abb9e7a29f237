"""What both listeners (SFTP and HTTPS) share to keep serving while clients hold
resources: a backoff for a failing accept(), and log lines that stay few when the
same refusal repeats.

A failing accept() (EMFILE when the process is out of descriptors, ENFILE, ENOBUFS,
ENOMEM) fails again at once while the listening socket stays readable: retried
without a pause it spins, and logged each time it floods the log. `AcceptBackoff`
waits (doubling up to MAX_WAIT) and writes one line when an episode starts (repeated
once a minute while it lasts) and one when accepting works again.
"""
import errno
import logging
import threading
import time

FIRST_WAIT = 0.01
MAX_WAIT = 0.5
REPEAT_EVERY = 60.0          # seconds between lines about the same thing
SETTLE = 1.0                 # seconds without a failed accept() that end an episode
# The client gave up between its connect and our accept: nothing is wrong here.
PEER_GONE = {errno.ECONNABORTED, errno.ECONNRESET, errno.EPROTO, errno.EPERM}


class AcceptBackoff:
    """Call `failed(error)` when accept() raised (it sleeps before returning) and
    `succeeded()` when it returned a connection.

    An episode starts with the first failure and ends with a success SETTLE seconds
    after the last one: at the edge of running out, accept() fails and succeeds by
    turns as descriptors come and go, which is still one episode, one line."""

    def __init__(self, log: logging.Logger, name: str):
        self._log = log
        self._name = name
        self._wait = 0.0
        self._failures = 0
        self._started: float | None = None   # time.monotonic() of the episode's first failure
        self._last_failure = 0.0
        self._logged = 0.0

    def failed(self, error: OSError) -> None:
        if error.errno in PEER_GONE:
            return
        now = time.monotonic()
        if self._started is None:
            self._started, self._failures, self._logged = now, 0, 0.0
        self._failures += 1
        self._last_failure = now
        if now - self._logged >= REPEAT_EVERY or self._failures == 1:
            self._logged = now
            self._log.warning("%s cannot accept connections: %s (pausing up to %g s between "
                              "attempts; %d failed so far)", self._name, error, MAX_WAIT,
                              self._failures)
        self._wait = min(MAX_WAIT, self._wait * 2 or FIRST_WAIT)
        time.sleep(self._wait)

    def succeeded(self) -> None:
        self._wait = 0.0
        if self._started is not None and time.monotonic() - self._last_failure >= SETTLE:
            self._log.info("%s accepts connections again (%d attempts failed over %.1f s)",
                              self._name, self._failures, self._last_failure - self._started)
            self._started = None


class QuietLog:
    """One log line per (kind, address) per REPEAT_EVERY; the repeats meanwhile are
    counted and named in the next line."""

    MAX_KEYS = 4096   # an address sweep must not grow the table without bound

    def __init__(self, log: logging.Logger):
        self._log = log
        self._lock = threading.Lock()
        # (kind, address) -> [time of the last line, repeats since]
        self._seen: dict[tuple[str, str], list[float]] = {}

    def info(self, kind: str, address: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get((kind, address))
            if entry is not None and now - entry[0] < REPEAT_EVERY:
                entry[1] += 1
                return
            repeats = entry[1] if entry else 0
            if len(self._seen) >= self.MAX_KEYS:
                self._forget_old(now)
            self._seen[(kind, address)] = [now, 0]
        suffix = f" ({repeats} more like this since the last such line)" if repeats else ""
        self._log.info(message + suffix, *args)

    def _forget_old(self, now: float) -> None:
        for key in [k for k, (t, _) in self._seen.items() if now - t >= REPEAT_EVERY]:
            del self._seen[key]
        if len(self._seen) >= self.MAX_KEYS:
            self._seen.clear()
