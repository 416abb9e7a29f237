"""Hot-path transactions that run SQLAlchemy Core statements on the DBAPI cursor.

A stat, the lookup before an upload, publishing an upload and SFTP's setstat
after it are most of the work of a small file, and SQLAlchemy's execution
machinery cost more than SQLite itself: ~200 us per statement through an ORM
session against ~13 us on the cursor. The statements stay SQLAlchemy
expressions (so they stay portable); each is compiled once per dialect and set
of parameter names. What this gives up is the type processing of results:
callers get plain tuples (`Row`s below normalise the columns that differ
between drivers) and pass parameters the driver understands as they are.
Everything else keeps using ORM sessions (appliance.db.engine).
"""
from contextlib import contextmanager
from typing import NamedTuple

from sqlalchemy import exc

from strongroom.appliance.db.models import Node, Version

# Compiled forms by statement: the statements are module-level constants with bound
# parameters (as SQLAlchemy's own statement cache wants them too).
_COMPILED: dict = {}
MAX_COMPILED = 1000


def _compiled(stmt, dialect, keys: tuple):
    """(sql, parameter order or None for named parameters, values of the
    parameters the statement itself fixes) for `stmt`."""
    key = (id(stmt), dialect.name, keys)
    hit = _COMPILED.get(key)
    if hit is None or hit[0] is not stmt:
        if len(_COMPILED) >= MAX_COMPILED:
            _COMPILED.clear()  # statements are meant to be module constants; a bound anyway
        c = stmt.compile(dialect=dialect, column_keys=list(keys))
        order = tuple(c.positiontup) if c.positiontup is not None else None
        # values the statement carries itself (a literal 1 in "count + 1")
        fixed = {name: bp.effective_value for name, bp in c.binds.items() if not bp.required}
        hit = _COMPILED[key] = (stmt, str(c), order, fixed)
    return hit[1], hit[2], hit[3]


class Result:
    """The part of a SQLAlchemy Result that the hot path uses."""

    def __init__(self, cursor):
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def first(self):
        return self._cursor.fetchone()

    def scalar(self):
        row = self._cursor.fetchone()
        return None if row is None else row[0]

    def scalar_one(self):
        row = self._cursor.fetchone()
        if row is None:
            raise exc.NoResultFound("no row where one was expected")
        return row[0]

    def all(self) -> list:
        return self._cursor.fetchall()


class Fast:
    """`execute(stmt, params)` inside one transaction, like an ORM session's."""

    def __init__(self, cursor, dialect):
        self._cursor, self._dialect = cursor, dialect

    def execute(self, stmt, params: dict | None = None) -> Result:
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

    def scalar(self, stmt, params: dict | None = None):
        return self.execute(stmt, params).scalar()


@contextmanager
def transaction(engine, begin: str | None, lock=None):
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
        finally:
            conn.close()
    finally:
        if lock is not None:
            lock.release()


_NODE_COLUMNS = tuple(c.key for c in Node.__table__.c)
_VERSION_COLUMNS = tuple(c.key for c in Version.__table__.c)


class NodeRow(NamedTuple("NodeFields", [(k, object) for k in _NODE_COLUMNS])):
    """A node as the hot path read it (read-only; same attribute names as Node)."""


class VersionRow(NamedTuple("VersionFields", [(k, object) for k in _VERSION_COLUMNS])):
    """A version as the hot path read it (same attribute names as Version)."""


def node_row(values) -> NodeRow | None:
    if values[0] is None:
        return None
    row = NodeRow(*values)
    return row._replace(is_dir=bool(row.is_dir))


def version_row(values) -> VersionRow | None:
    if values[0] is None:
        return None
    row = VersionRow(*values)
    return row._replace(wrapped_key=bytes(row.wrapped_key))


def split_row(values, *tables):
    """A flat row of several tables' columns, cut into one Row per table."""
    out, pos = [], 0
    for make, width in tables:
        out.append(make(values[pos:pos + width]))
        pos += width
    return out


NODE = (node_row, len(_NODE_COLUMNS))
VERSION = (version_row, len(_VERSION_COLUMNS))
