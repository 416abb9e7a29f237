"""The hot path's contract: what a transaction on the DBAPI cursor can run, and the rows
it returns.

A stat, the lookup before an upload, publishing an upload and SFTP's setstat after it
run on appliance.db.fast.Fast, which compiles Core statements once and skips
SQLAlchemy's result processing. A function typed to take a HotPath may only run Core
SELECT, INSERT, UPDATE and DELETE statements with plain parameters and must read
rows as tuples: no ORM session features (get, add, scalars, loading attributes), so
mypy refuses ORM work inside a fast transaction. A SQLAlchemy Connection is a HotPath
too (an ORM session's `connection()`: the same transaction, without autoflush).
"""
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeAlias, Unpack

from sqlalchemy import Select, UpdateBase

from strongroom.appliance.db.models import Node, Version

# A SELECT of any columns (a string: SQLAlchemy 2.0's Select takes one type argument).
AnySelect: TypeAlias = "Select[Unpack[tuple[Any, ...]]]"
# What the hot path runs: a Core statement, built once as a module constant (Fast keeps
# its compiled form by identity).
Statement: TypeAlias = "AnySelect | UpdateBase"
Params: TypeAlias = Mapping[str, Any]


class HotResult(Protocol):
    """The part of a SQLAlchemy Result the hot path reads. Values are as the driver
    gives them: `NodeRow`/`VersionRow` below normalise those that differ."""

    @property
    def rowcount(self) -> int: ...

    def first(self) -> Sequence[Any] | None: ...

    def scalar(self) -> Any: ...

    def scalar_one(self) -> Any: ...

    def all(self) -> Sequence[Sequence[Any]]: ...


class HotPath(Protocol):
    """One transaction in which hot-path statements run (appliance.db.fast.Fast)."""

    def execute(self, stmt: Statement, params: Params | None = None, /) -> HotResult: ...

    def scalar(self, stmt: Statement, params: Params | None = None, /) -> Any: ...


class ClientRow(NamedTuple):
    """What the hot path reads of a client or library (models.Client's names)."""
    id: int
    name: str
    quota_bytes: int | None
    wrapped_key: bytes
    kind: str


class NodeRow(NamedTuple):
    """A node as the hot path read it (read-only; the attribute names of models.Node)."""
    id: int
    client_id: int
    parent_id: int | None
    name: str
    is_dir: bool
    current_version_id: int | None
    created_at: float
    modified_at: float
    deleted_at: float | None


class VersionRow(NamedTuple):
    """A version as the hot path read it (the attribute names of models.Version)."""
    id: int
    node_id: int
    blob_id: str
    size: int
    digest: str
    wrapped_key: bytes
    mtime: float
    created_at: float
    author: str | None
    holes: str | None
    pinned: bool
    client_key_id: str


def _check_fields() -> None:
    """The rows are built by position from SELECTs of the mapped tables: a column added
    to a model without its field here would shift every value after it."""
    for row, model in ((NodeRow, Node), (VersionRow, Version)):
        if row._fields != tuple(c.key for c in model.__table__.c):
            raise RuntimeError(f"{row.__name__} does not list the columns of {model.__name__}")


_check_fields()
NODE_WIDTH, VERSION_WIDTH = len(NodeRow._fields), len(VersionRow._fields)


def client_row(values: Sequence[Any]) -> ClientRow:
    """The client in `values` (psycopg2 gives bytea as a memoryview)."""
    row = ClientRow(*values)
    return row._replace(wrapped_key=bytes(row.wrapped_key))


def node_row(values: Sequence[Any]) -> NodeRow | None:
    """The node in `values` (its table's columns in order), None for an outer join's
    missing row. SQLite gives booleans as integers."""
    if values[0] is None:
        return None
    row = NodeRow(*values)
    return row._replace(is_dir=bool(row.is_dir))


def version_row(values: Sequence[Any]) -> VersionRow | None:
    """As node_row, for a version (psycopg2 gives bytea as a memoryview)."""
    if values[0] is None:
        return None
    row = VersionRow(*values)
    return row._replace(wrapped_key=bytes(row.wrapped_key), pinned=bool(row.pinned))


if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    def _connection_is_a_hot_path(c: Connection) -> HotPath:
        return c  # mypy checks the claim in the module docstring
