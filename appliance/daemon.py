"""`strongroom serve`: WebDAV and SFTP in one process until SIGTERM or SIGINT, with
the threads that anchor the audit trail, send notifications and run maintenance.

Stopping closes the listeners and every connection; an upload that has not
been closed cleanly is aborted, so no partial version ever becomes visible.
Staging leftovers of a killed process are removed at the next start, with the
blobs it published whose versions it never committed (appliance.service.admin_doctor).

The master key is had before anything else is touched: a missing or wrong one stops
the start with one line (appliance.keysource). A key sealed by a passphrase that was
not given starts the daemon locked (appliance.unlocking): it binds nothing until
`strongroom unlock`.
"""
import ctypes
import logging
import signal
import threading
import time
from pathlib import Path

from strongroom import config as configmod
from strongroom.appliance import keysource, logs, metrics, unlocking
from strongroom.appliance.app import App
from strongroom.appliance.notify.sender import Sender
from strongroom.appliance.runlock import RunLock
from strongroom.appliance.service import admin_doctor
from strongroom.appliance.service.admin import Admin
from strongroom.appliance.service.maintenance import ACTOR as MAINTENANCE
from strongroom.appliance.service.maintenance_lease import LeaseTaken
from strongroom.appliance.startup import listeners
from strongroom.appliance.version import installed
from strongroom.auth import passwords

log = logging.getLogger("strongroom")


def _limit_malloc_arenas(count: int = 2) -> None:
    """glibc gives every thread its own allocation arena, and freed blocks stay in it:
    with a thread per connection and per upload that grows RSS for nothing."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, count)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc


def _anchor_audit(app: App, stop: threading.Event) -> None:
    """Anchor the audit chain outside the database every [audit] anchor_interval
    (appliance.service.audit), and every second write the events held while the
    database's disk was full; the last anchor is written when the App closes."""
    interval = app.config.audit.anchor_interval
    due = time.monotonic() + interval
    while not stop.wait(min(1.0, interval)):
        try:
            if app.audit.holding:
                app.audit.flush(app.db)
            if time.monotonic() >= due:
                due = time.monotonic() + interval
                app.audit.anchor(app.db)
        except Exception:
            log.exception("anchoring the audit trail failed")


# The first maintenance run comes this long after the start (or one interval, if
# shorter): not at once, so that a restart loop does not purge in a loop.
FIRST_MAINTENANCE = 30.0


def _maintain(app: App, stop: threading.Event) -> None:
    """Run maintenance (appliance.service.maintenance) every [retention] interval
    until `stop`. A run another process holds is skipped; a failure is one log line,
    and the next run tries again."""
    admin = Admin(app, MAINTENANCE, "system")
    interval = app.config.retention.interval
    wait = min(FIRST_MAINTENANCE, interval)
    while not stop.wait(wait):
        wait = interval
        try:
            results = admin.maintenance(cancelled=stop.is_set)
        except LeaseTaken as e:
            log.info("maintenance skipped: %s", e)
            continue
        except Exception as e:      # the thread must live on: the next run tries again
            log.error("maintenance failed: %s: %s", type(e).__name__,
                      " ".join(str(e).split())[:300])
            continue
        totals = [sum(r[k] or 0 for r in results) for k in ("versions", "trash_items",
                                                               "blobs", "bytes")]
        if any(totals):
            log.info("maintenance removed %d versions, %d trash items, %d blobs (%d bytes)",
                     *totals)


def run(data_dir: Path, passphrase_file: Path | None = None) -> None:
    """Serve until SIGTERM or SIGINT. The data directory's lock is taken before
    anything in it is touched (a second daemon stops there, naming the first), the
    master key is had before the database is opened (a missing or wrong one changes
    nothing), and the ports are bound before the staging area is cleaned.
    `passphrase_file`: the passphrase of a sealed master key; without it such a
    daemon waits locked for `strongroom unlock`."""
    _limit_malloc_arenas()
    cfg = configmod.load(data_dir)     # no config: one line saying where and what to run
    lock = RunLock(data_dir).acquire(installed())
    stopping: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    try:
        source = _master_key(cfg, passphrase_file, stopping)
        if source is not None:
            _serve(App(data_dir, key_source=source), lock, stopping)
    finally:
        lock.release()


def _master_key(cfg: configmod.Config, passphrase_file: Path | None,
                stopping: list[int]) -> keysource.KeySource | None:
    """The source of the master key, its key loaded (KeyUnavailable, one line, if it
    cannot be had); None if the daemon was stopped while it waited locked."""
    ask = (lambda: keysource.read_passphrase_file(passphrase_file)) if passphrase_file \
        else None
    source = keysource.from_config(cfg, ask)
    if isinstance(source, keysource.PassphraseSource) and passphrase_file is None:
        source.present()
        logs.setup(cfg.log)
        if unlocking.wait_unlocked(cfg.data_dir, source, stopping):
            return source
        log.info("stopped while locked")
        return None
    source.load()
    return source


def _serve(app: App, lock: RunLock, stopping: list[int]) -> None:
    logs.setup(app.config.log)
    # paramiko logs a traceback for every port probe or reset; we log one line per connection
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    passwords.dummy_hash()        # now, so that the first unknown login costs what others do
    stop_metrics = metrics.serve(app)   # before the listeners, which count into it
    try:
        sftp, web = listeners(app)
    except BaseException:
        stop_metrics()
        raise
    removed = admin_doctor.clean_staging(app)
    if removed:
        log.info("removed %d staging files left by an earlier run and %d blobs it "
                 "published without recording their versions",
                 sum("." in n for n in removed), sum("." not in n for n in removed))
    capped = app.locks.cap()
    if capped:
        log.info("shortened %d WebDAV locks to [webdav] lock_max", capped)
    host = app.config.server.host
    lock.update(host=host, webdav_port=web.bind_addr[1], sftp_port=sftp.port)
    stop = threading.Event()
    threads = [threading.Thread(target=web.serve, name="webdav", daemon=True),
               threading.Thread(target=sftp.serve_forever, name="sftp", daemon=True),
               threading.Thread(target=_anchor_audit, args=(app, stop), name="audit-anchor",
                                daemon=True),
               # notifications: routes, builds and sends digests until `stop` (notify.sender)
               threading.Thread(target=Sender(app).run, args=(stop,), name="notify",
                                daemon=True),
               # retention, trash expiry, unreferenced blobs (service.maintenance)
               threading.Thread(target=_maintain, args=(app, stop), name="maintenance",
                                daemon=True)]
    for t in threads:
        t.start()
    log.info("serving WebDAV on https://%s:%d/ and SFTP on %s:%d (data: %s)",
             host, web.bind_addr[1], host, sftp.port, app.data_dir)
    # Not Event.wait() with a handler calling set(): Python runs handlers on the main
    # thread, and a SIGTERM that came as it entered wait() stayed unhandled while it
    # blocked there (a daemon stopped right after it started never stopped); set()
    # in a handler can also deadlock on the lock wait() holds. The handler only
    # appends, and this loop looks.
    while not stopping:
        time.sleep(0.2)
    log.info("stopping")
    stop.set()
    sftp.shutdown()
    web.stop()
    stop_metrics()
    for t in threads:
        t.join(timeout=10)
    app.close()
    log.info("stopped")
