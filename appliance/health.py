"""How the appliance is doing: `strongroom status` from outside the daemon, and
the daemon's own /healthz (`problem`).

`status` only reads: it builds no App (which would migrate the database, write
the audit trail and make the staging folder), opens SQLite read-only (and, when
no daemon has it open, without the -wal and -shm files a read-only connection
would otherwise leave behind, owned by whoever ran it), and looks at the
daemon through its lock file (appliance.runlock) and its ports. Each check
says whether it needs attention; `status` never raises for what it checks.
"""
import os
import socket
import ssl
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from strongroom import config as configmod
from strongroom.appliance import keysource, runlock, unlocking
from strongroom.appliance.db import default_url, migrate
from strongroom.appliance.db.engine import safe_url
from strongroom.appliance.version import installed as installed_version
from strongroom.providers import crypto
from strongroom.providers.errors import CorruptData
from strongroom.config import Config

if TYPE_CHECKING:
    from strongroom.appliance.app import App

TIMEOUT = 3.0      # seconds for each network look (ports, database)


@dataclass
class Check:
    """One line of `strongroom status`. `ok`: True, False (needs attention) or
    None (a fact, nothing to judge)."""
    name: str
    ok: bool | None
    summary: str
    facts: dict[str, Any] = field(default_factory=dict)   # JSON values


def status(data_dir: Path) -> dict[str, Any]:
    """Every check, as {"ok": all well, "attention": [names], name: {ok, summary,
    facts...}}. A config that cannot be read raises ConfigError (nothing to check)."""
    data_dir = Path(data_dir).resolve()
    cfg = configmod.load(data_dir)
    holder = runlock.holder(data_dir)
    locked = holder is not None and unlocking.socket_path(data_dir).exists()
    database, sample_key = _database(cfg, data_dir)
    checks = [_daemon(holder, locked), *_ports(cfg, holder, locked), database,
              _master_key(cfg, sample_key), _disk(cfg), _staging(cfg)]
    report: dict[str, Any] = {"ok": all(c.ok is not False for c in checks),
              "attention": [c.name for c in checks if c.ok is False]}
    for c in checks:
        report[c.name] = {"ok": c.ok, "summary": c.summary, **c.facts}
    return report


# -- the daemon -------------------------------------------------------------------

def _daemon(holder: dict[str, Any] | None, locked: bool = False) -> Check:
    if holder is not None and locked:
        return Check("daemon", False, f"locked, PID {holder.get('pid')}: it serves nothing "
                     "until `strongroom unlock` gives the master key's passphrase",
                     {"running": True, "locked": True, "pid": holder.get("pid")})
    if holder is None:
        return Check("daemon", False, "not running (no process holds strongroom.pid); "
                     "start it with 'strongroom serve' or systemctl start strongroom",
                     {"running": False})
    if not holder.get("pid"):
        return Check("daemon", False, "starting or stopping (its lock is held, its facts "
                     "not written yet)", {"running": True})
    up = time.time() - holder.get("started_at", time.time())
    installed = installed_version()
    facts = {"running": True, "pid": holder["pid"], "version": holder.get("version"),
             "started_at": holder.get("started_at"), "uptime_seconds": round(up)}
    summary = f"running, PID {holder['pid']}, up {duration(up)}, version {facts['version']}"
    if facts["version"] != installed:
        summary += f" (installed: {installed}; restart to run it)"
    return Check("daemon", True, summary, facts)


def _ports(cfg: Config, holder: dict[str, Any] | None, locked: bool = False) -> list[Check]:
    if locked:      # a locked daemon binds nothing: the daemon line says why
        return [Check(name, None, "not listening while the daemon is locked",
                      {"host": cfg.server.host, "port": port, "accepting": False})
                for name, port in (("webdav", cfg.server.webdav_port),
                                   ("sftp", cfg.server.sftp_port))]
    holder = holder or {}
    host = holder.get("host", cfg.server.host)
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    running = bool(holder.get("pid"))
    return [_port("webdav", target, holder.get("webdav_port", cfg.server.webdav_port),
                  running, _https_healthz),
            _port("sftp", target, holder.get("sftp_port", cfg.server.sftp_port),
                  running, _ssh_banner)]


def _port(name: str, host: str, port: int, running: bool,
          probe: Callable[[socket.socket, str], tuple[str, bool]]) -> Check:
    facts: dict[str, Any] = {"host": host, "port": port}
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            sock.settimeout(TIMEOUT)
            facts["accepting"] = True
            answer, ok = probe(sock, host) if running else ("", True)
    except OSError as e:
        facts["accepting"] = False
        if not running:
            return Check(name, None, f"port {port} on {host}: not listening", facts)
        return Check(name, False, f"port {port} on {host} does not accept connections: "
                                  f"{e.strerror or e}", facts)
    if not running:
        return Check(name, False, f"port {port} on {host} is taken by another program: "
                                  "the daemon could not start", facts)
    facts["answer"] = answer
    return Check(name, ok, f"port {port} on {host} accepts connections; {answer}", facts)


def _https_healthz(sock: socket.socket, host: str) -> tuple[str, bool]:
    """What GET /healthz answers on the daemon's own HTTPS port (loopback, so its
    certificate is not checked: it is the daemon's, whatever name it has)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            tls.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n"
                        "Connection: close\r\n\r\n".encode())
            line = tls.recv(256).split(b"\r\n", 1)[0].decode("ascii", "replace")
    except OSError as e:
        return f"no HTTPS answer: {e}", False
    return f"/healthz: {line[9:] or 'no answer'}", line[9:12] == "200"


def _ssh_banner(sock: socket.socket, _host: str) -> tuple[str, bool]:
    try:
        banner = sock.recv(256).split(b"\r\n", 1)[0].decode("ascii", "replace")
    except OSError as e:
        return f"no SSH banner: {e}", False
    return (f"SSH banner {banner}", True) if banner.startswith("SSH-2.0-") else \
        (f"not an SSH server: {banner[:40]!r}", False)


# -- the database and the key ---------------------------------------------------------

def _database(cfg: Config, data_dir: Path) -> tuple[Check, tuple[bytes, ...] | None]:
    """(check, one client's wrapped key or None): the key shows that the master
    key is the one the database was made with."""
    url = cfg.database.url or default_url(data_dir)
    facts: dict[str, Any] = {"url": safe_url(url)}
    try:
        engine = _engine(url)
        with engine.connect() as c:
            at, sample = migrate.current(c), _sample_key(c)
        engine.dispose()
    except FileNotFoundError as e:
        return Check("database", False, str(e), facts), None
    except ModuleNotFoundError as e:
        return Check("database", False, f"{facts['url']}: its driver ({e.name}) is not "
                     "installed (PostgreSQL: pip install 'strongroom[postgres]')", facts), None
    except ArgumentError:
        return Check("database", False, "[database] url is not a database URL such as "
                     "postgresql+psycopg2://USER@HOST/DB", facts), None
    except SQLAlchemyError as e:
        reason = " ".join(str(getattr(e, "orig", None) or e).split())
        return Check("database", False, f"cannot use {facts['url']}: {reason}", facts), None
    heads = migrate.heads()
    facts.update(revision=",".join(sorted(at)) or None, head=",".join(sorted(heads)))
    if at == heads:
        return Check("database", True, f"{facts['url']} answers; schema up to date "
                     f"(revision {facts['head']})", facts), sample
    if not at:
        return Check("database", False, f"{facts['url']} answers but holds no Strongroom "
                     "schema yet (the first 'strongroom serve' makes it)", facts), sample
    return Check("database", False, f"{facts['url']} is at revision {facts['revision']}, "
                 f"this version needs {facts['head']}: 'strongroom serve' migrates it at "
                 "start (or it was made by a newer version)", facts), sample


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not path.is_file():
            raise FileNotFoundError(f"no database file {path} ('strongroom init' makes it)")
        # Without a -wal file no process has the database open: immutable needs no
        # -wal or -shm, which mode=ro would create and leave owned by this user.
        flag = "mode=ro" if Path(f"{path}-wal").exists() else "immutable=1"
        uri = f"file:{quote(str(path))}?{flag}"
        return create_engine("sqlite://", poolclass=NullPool,
                             creator=lambda: sqlite3.connect(uri, uri=True,
                                                             timeout=TIMEOUT))
    args = {"connect_timeout": int(TIMEOUT)} if parsed.get_backend_name() == "postgresql" \
        else {}
    return create_engine(url, poolclass=NullPool, connect_args=args)


def _sample_key(connection: Connection) -> tuple[bytes, ...] | None:
    """A client's wrapped key, and the next master key of an unfinished rotation (as
    stored: wrapped by the current one) if there is one: during a rotation some client
    keys are wrapped by the next key, which the source's key opens through that row."""
    try:
        value = connection.execute(text("SELECT wrapped_key FROM clients ORDER BY id LIMIT 1")
                                   ).scalar()
    except SQLAlchemyError:
        return None      # no schema yet: the revision check says so
    if value is None:
        return None
    try:
        nxt = connection.execute(text("SELECT wrapped FROM appliance_keys WHERE name = "
                                      "'master-next'")).scalar()
    except SQLAlchemyError:
        nxt = None       # a schema from before key ids
    return (bytes(value),) if nxt is None else (bytes(value), bytes(nxt))


def _loose_mode(source: keysource.KeySource) -> str | None:
    """What is wrong with the key file's mode (symlinks followed), if others may read it."""
    if not isinstance(source, (keysource.FileSource, keysource.PassphraseSource)):
        return None
    try:
        mode = os.stat(source.path).st_mode & 0o777
    except OSError:
        return None
    if mode & 0o077:
        return (f"is readable by others than its owner (mode {mode:04o}): "
                f"chmod 600 {source.path}")
    return None


def _opens(key: bytes, sample: tuple[bytes, ...]) -> bool:
    """Whether `key` opens the sampled client key, directly or through the next key."""
    keys = [key]
    if len(sample) > 1:
        try:
            keys.append(crypto.unwrap_key(key, sample[1]))
        except CorruptData:
            pass
    for k in keys:
        try:
            crypto.unwrap_key(k, sample[0])
            return True
        except CorruptData:
            pass
    return False


def _master_key(cfg: Config, sample: tuple[bytes, ...] | None) -> Check:
    """Whether the master key can be had from its source and opens the database's
    client keys; never asks for anything (a passphrase or a credential status cannot
    have is a fact, ok None)."""
    source = keysource.from_config(cfg)
    facts: dict[str, Any] = {"source": source.describe(), "matches_database": None}
    if isinstance(source, keysource.FileSource):
        facts["file"] = str(source.path)
    where = source.describe()
    try:
        if isinstance(source, keysource.PassphraseSource):
            source.present()
            return Check("master_key", None, f"{where}: cannot be checked without the "
                         "passphrase", facts)
        if isinstance(source, keysource.CredentialSource) and \
                "CREDENTIALS_DIRECTORY" not in os.environ:
            return Check("master_key", None, f"{where}: only the unit (or systemd-run "
                         "with the credential) can read it", facts)
        key = source.load()
    except keysource.KeyUnavailable as e:
        return Check("master_key", False, str(e), facts)
    loose = _loose_mode(source)
    if loose:
        return Check("master_key", False, f"{where} {loose}", facts)
    if sample is None:
        return Check("master_key", True, f"{where}: readable, {len(key)} bytes", facts)
    if not _opens(key, sample):
        facts["matches_database"] = False
        return Check("master_key", False, f"{where} does not open the clients' keys in the "
                     "database: a different master key", facts)
    facts["matches_database"] = True
    return Check("master_key", True, f"{where}: readable, {len(key)} bytes, opens the "
                 "clients' keys", facts)


# -- the disk ----------------------------------------------------------------------------

def _disk(cfg: Config) -> Check:
    blob_dir = cfg.storage.blob_dir
    try:
        st = os.statvfs(blob_dir)
    except OSError as e:
        return Check("disk", False, f"cannot look at {blob_dir}: {e.strerror}",
                     {"blob_dir": blob_dir})
    total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    reserve = cfg.storage.reserve.of(total)
    facts = {"blob_dir": blob_dir, "total_bytes": total, "free_bytes": free,
             "reserve_bytes": reserve}
    summary = (f"{size(free)} free of {size(total)} at {blob_dir}; reserve {size(reserve)} "
               "([storage] reserve)")
    if free < reserve:
        return Check("disk", False, summary + ": below it, uploads are refused", facts)
    return Check("disk", True, summary, facts)


def _staging(cfg: Config) -> Check:
    where = Path(cfg.storage.blob_dir) / ".staging"
    files = used = 0
    try:
        with os.scandir(where) as entries:
            for entry in entries:
                try:
                    used += entry.stat(follow_symlinks=False).st_blocks * 512
                    files += 1
                except FileNotFoundError:
                    continue    # committed or removed meanwhile
    except FileNotFoundError:
        pass
    except OSError as e:
        return Check("staging", False, f"cannot list {where}: {e.strerror}", {"dir": str(where)})
    return Check("staging", None, f"{files} files, {size(used)} in {where} (uploads in "
                 "progress, or left by a stopped daemon until its next start)",
                 {"dir": str(where), "files": files, "bytes": used})


# -- inside the daemon: /healthz ------------------------------------------------------

def problem(app: "App") -> str | None:
    """Why the running daemon cannot serve, or None: the database answers a query,
    and a blob can be started above the reserve."""
    try:
        with app.db.read() as s:
            s.execute(text("SELECT 1"))
    except Exception as e:      # any driver's error: what matters is that it failed
        return f"database: {' '.join(str(e).split())[:200]}"
    try:
        total, free = app.provider.space()
        if free < app.config.storage.reserve.of(total):
            return "free space below [storage] reserve"
        app.provider.check_writable()
    except OSError as e:
        return f"storage: {e.strerror or e}"
    return None


def size(n: float) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:.0f} B" if i == 0 else f"{n:.1f} {units[i]}"


def duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"
