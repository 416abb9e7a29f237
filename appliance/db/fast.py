"""Hot-path transactions that run SQLAlchemy Core statements on the DBAPI cursor.

A stat, the lookup before an upload, publishing an upload and SFTP's setstat
after it are most of the work of a small file, and SQLAlchemy's execution
machinery cost more than SQLite itself: ~200 us per statement through an ORM
session against ~13 us on the cursor. The statements stay SQLAlchemy
expressions (so they stay portable); each is compiled once per dialect and set
of parameter names. What this gives up is the type processing of results:
callers get plain tuples (appliance.db.hotpath's rows normalise the columns that
differ between drivers) and pass parameters the driver understands as they are.
`Fast` implements hotpath.HotPath, the contract functions on the hot path are
typed against. Everything else keeps using ORM sessions (appliance.db.engine).
"""
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from sqlalchemy import exc
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.sql.compiler import SQLCompiler

from strongroom.appliance.db import diskfull
from strongroom.appliance.db.hotpath import HotPath, Params, Statement
from strongroom.providers.errors import NoSpace


class _Lock(Protocol):
    def acquire(self) -> bool: ...

    def release(self) -> None: ...


# (sql, parameter order or None for named parameters, values the statement fixes)
_Compiled = tuple[str, tuple[str, ...] | None, dict[str, Any]]
# Compiled forms by statement: the statements are module-level constants with bound
# parameters (as SQLAlchemy's own statement cache wants them too).
_COMPILED: dict[tuple[int, str, tuple[str, ...]], tuple[Statement, _Compiled]] = {}
MAX_COMPILED = 1000


def _compiled(stmt: Statement, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
    """(sql, parameter order or None for named parameters, values of the
    parameters the statement itself fixes) for `stmt`."""
    key = (id(stmt), dialect.name, keys)
    hit = _COMPILED.get(key)
    if hit is None or hit[0] is not stmt:
        if len(_COMPILED) >= MAX_COMPILED:
            _COMPILED.clear()  # statements are meant to be module constants; a bound anyway
        c = stmt.compile(dialect=dialect, column_keys=list(keys))
        assert isinstance(c, SQLCompiler)  # a SELECT or DML statement: never DDL
        order = tuple(c.positiontup) if c.positiontup is not None else None
        # values the statement carries itself (a literal 1 in "count + 1")
        fixed = {name: bp.effective_value for name, bp in c.binds.items() if not bp.required}
        hit = _COMPILED[key] = (stmt, (str(c), order, fixed))
    return hit[1]


class Result:
    """The part of a SQLAlchemy Result that the hot path uses (a hotpath.HotResult)."""

    def __init__(self, cursor: DBAPICursor):
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def first(self) -> Sequence[Any] | None:
        row: Sequence[Any] | None = self._cursor.fetchone()
        return row

    def scalar(self) -> Any:
        row = self._cursor.fetchone()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            raise exc.NoResultFound("no row where one was expected")
        return row[0]

    def all(self) -> Sequence[Sequence[Any]]:
        return self._cursor.fetchall()


class Fast:
    """`execute(stmt, params)` inside one transaction, like an ORM session's: a
    hotpath.HotPath (mypy checks it where `transaction` yields one)."""

    def __init__(self, cursor: DBAPICursor, dialect: Dialect):
        self._cursor, self._dialect = cursor, dialect

    def execute(self, stmt: Statement, params: Params | None = None, /) -> Result:
        params = params or {}
        sql, order, fixed = _compiled(stmt, self._dialect, tuple(sorted(params)))
        if fixed:
            params = {**fixed, **params}
        args = [params[k] for k in order] if order is not None else params
        try:
            self._cursor.execute(sql, args)
        except self._dialect.loaded_dbapi.IntegrityError as e:
            raise exc.IntegrityError(sql, args, e) from e
        return Result(self._cursor)

    def scalar(self, stmt: Statement, params: Params | None = None, /) -> Any:
        return self.execute(stmt, params).scalar()


@contextmanager
def transaction(engine: Engine, begin: str | None, lock: _Lock | None = None
                ) -> Iterator[HotPath]:
    """A Fast in a transaction on a pooled connection: committed on a clean exit,
    rolled back on an exception. `begin`: the statement that opens it (SQLite;
    None where the driver opens one itself); `lock`: held throughout (writers)."""
    if lock is not None:
        lock.acquire()
    try:
        conn = engine.raw_connection()
        try:
            cursor = conn.cursor()
            if begin:
                cursor.execute(begin)
            try:
                yield Fast(cursor, engine.dialect)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            cursor.close()
        except engine.dialect.loaded_dbapi.Error as e:
            if diskfull.disk_full(e):   # NoSpace, as the ORM sessions raise it (db.diskfull)
                raise NoSpace(diskfull.MESSAGE) from e
            raise
        finally:
            conn.close()
    finally:
        if lock is not None:
            lock.release()
