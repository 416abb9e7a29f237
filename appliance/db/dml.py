"""The rows an UPDATE or DELETE changed, in an ORM session or on the hot path.

Session.execute is typed to return a Result, which has no rowcount; for a DML
statement it returns a CursorResult, which has. Running the statement on
`s.connection()` instead would skip the ORM's autoflush and its synchronisation of
the objects the session holds, so the ORM session runs it and this checks the type.
"""
from typing import Any, Unpack

from sqlalchemy import CursorResult, Result

from strongroom.appliance.db.hotpath import HotResult


def rowcount(result: "Result[Unpack[tuple[Any, ...]]] | HotResult") -> int:
    """`result.rowcount` of a DML statement's result (any rows it returns: Any)."""
    if isinstance(result, CursorResult):
        return result.rowcount
    if isinstance(result, Result):
        raise TypeError(f"not the result of an UPDATE or DELETE: {type(result).__name__}")
    return result.rowcount    # appliance.db.fast's
