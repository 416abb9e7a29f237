"""Engines and transactions.

SQLite runs in WAL mode. Write transactions start with BEGIN IMMEDIATE so two
writers queue on the busy timeout instead of failing when a read snapshot
would have to be upgraded; reads use plain deferred BEGIN and never block.
Within one process, SQLite writers also queue on a lock: SQLite's busy handler
polls with sleeps that grow to 100 ms, so threads that waited on it took many
times longer than the transaction they waited for. Other processes (the CLI)
still meet the busy timeout.

PostgreSQL runs at READ COMMITTED: a writer that must see what the writers before
it committed takes a row lock first (appliance.service.spine locks the client's row,
so one client's writes follow each other as SQLite's do). What the database gives
up on under contention (a deadlock, a serialization failure) is told apart by
`contention()`, for the caller to run its transaction again.
"""
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
import sqlite3
import threading

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session as OrmSession, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from strongroom.appliance.db import diskfull, fast
from strongroom.appliance.db.hotpath import HotPath
from strongroom.appliance.errors import Unavailable


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir) / 'strongroom.db'}"


def safe_url(url: str) -> str:
    """`url` without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable)"


# SQLSTATEs after which the whole transaction may simply be run again: serialization
# failure, deadlock detected, lock not available.
_RETRY_STATES = frozenset({"40001", "40P01", "55P03"})


def contention(exc: BaseException) -> str | None:
    """'retry' if `exc` (a driver's error, or SQLAlchemy's wrapping one) is the
    database giving up on a transaction under contention, which run again may well
    succeed (PostgreSQL: a deadlock or serialization failure); 'busy' if a lock was
    not granted within the busy timeout (SQLite: it has waited already); else None."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    if state in _RETRY_STATES:
        return "retry"
    if isinstance(orig, sqlite3.OperationalError) and \
            ("locked" in str(orig) or "busy" in str(orig)):
        return "busy"
    return None


def _sqlite_engine(url: str, begin: str) -> Engine:
    engine = create_engine(url, pool_size=8, max_overflow=32, pool_timeout=60)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                       "busy_timeout=60000"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


class Database:
    """Holds the engines; `read()` and `write()` give an ORM session in a transaction."""

    def __init__(self, url: str):
        self.url = url
        try:
            self._engines(url)
        except ModuleNotFoundError as e:
            raise Unavailable(f"database {safe_url(url)}: its driver ({e.name}) is not installed; "
                              "for PostgreSQL: pip install 'strongroom[postgres]' and a URL "
                              "postgresql+psycopg2://...") from None
        except ArgumentError:
            raise Unavailable("[database] url is not a database URL such as "
                              "postgresql+psycopg2://USER@HOST/DB") from None

    def _engines(self, url: str) -> None:
        # Reentrant: a nested write (none is known) meets SQLite's busy timeout as before.
        self._writers = threading.RLock() if url.startswith("sqlite") else None
        # Whether a writer must lock the rows it decides on: SQLite's writer lock
        # already serialises every write transaction.
        self.locks_rows = self._writers is None
        if url.startswith("sqlite"):
            self.engine = _sqlite_engine(url, "BEGIN IMMEDIATE")
            self._read_engine = _sqlite_engine(url, "BEGIN")
        else:
            self.engine = create_engine(url, pool_size=8, max_overflow=32, pool_pre_ping=True)
            self._read_engine = self.engine
        for engine in {self.engine, self._read_engine}:  # a full disk: NoSpace (db.diskfull)
            event.listen(engine, "handle_error", diskfull.as_no_space)
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(self._read_engine, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[OrmSession]:
        if self._writers is None:
            with self._write.begin() as s:
                yield s
            return
        with self._writers, self._write.begin() as s:
            yield s

    def fast_write(self) -> AbstractContextManager[HotPath]:
        """A write transaction for appliance.db.fast statements."""
        if self._writers is None:
            return fast.transaction(self.engine, None)
        return fast.transaction(self.engine, "BEGIN IMMEDIATE", self._writers)

    def fast_read(self) -> AbstractContextManager[HotPath]:
        """A read transaction for appliance.db.fast statements."""
        return fast.transaction(self._read_engine, "BEGIN" if self._writers else None)

    @contextmanager
    def read(self) -> Iterator[OrmSession]:
        with self._read.begin() as s:
            yield s

    def dispose(self) -> None:
        self.engine.dispose()
        self._read_engine.dispose()
