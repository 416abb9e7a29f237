"""A database that cannot write because its disk is full, told apart from other failures.

SQLite says "database or disk is full" (SQLITE_FULL) when its file or WAL cannot
grow; PostgreSQL raises disk_full (SQLSTATE 53100). Either is the same to a client
as a full blob store: NoSpace (WebDAV 507, an SFTP failure saying so), never an
internal error. Nothing of the transaction was committed.
"""
import sqlite3

from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError

from strongroom.providers.errors import NoSpace

MESSAGE = "not enough free space on the server (the database cannot grow)"


def disk_full(exc: BaseException) -> bool:
    """True if `exc` (a driver's error, or SQLAlchemy's wrapping one) says the
    database's disk is full."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, sqlite3.Error):
        return getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL \
            or "database or disk is full" in str(orig)
    return (getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)) == "53100"


def as_no_space(context: ExceptionContext) -> None:
    """SQLAlchemy's handle_error event: a full disk raises NoSpace instead."""
    if disk_full(context.original_exception):
        raise NoSpace(MESSAGE) from context.original_exception
