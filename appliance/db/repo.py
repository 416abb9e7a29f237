"""Queries over the file tree. A function typed to take a hotpath.HotPath runs on the
hot path (appliance.db.fast) and returns tuples or hotpath rows; the others take an
ORM session and return mapped objects, which the caller may change."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import BigInteger, Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from strongroom.appliance.db.hotpath import (NODE_WIDTH, AnySelect, ClientRow, HotPath,
                                             NodeRow, VersionRow, client_row, node_row,
                                             version_row)
from strongroom.appliance.db.models import Base, Client, Node, User, UserKey, Version


_CLIENT_BY_NAME = select(Client).where(Client.name == bindparam("name"))


def client_by_name(s: Session, name: str) -> Client | None:
    return s.scalar(_CLIENT_BY_NAME, {"name": name})


_CLIENT_INFO = select(Client.id, Client.name, Client.quota_bytes, Client.wrapped_key,
                      Client.kind).where(Client.name == bindparam("name"))


def client_info(s: HotPath, name: str) -> ClientRow | None:
    """(id, name, quota_bytes, wrapped_key, kind) of the client or library `name`,
    or None."""
    row = s.execute(_CLIENT_INFO, {"name": name}).first()
    return None if row is None else client_row(row)


_CLIENT_INFO_BY_ID = select(Client.id, Client.name, Client.quota_bytes, Client.wrapped_key,
                            Client.kind).where(Client.id == bindparam("client_id"))


def client_info_by_id(s: HotPath, client_id: int) -> ClientRow | None:
    """As client_info, of the client with id `client_id`."""
    row = s.execute(_CLIENT_INFO_BY_ID, {"client_id": client_id}).first()
    return None if row is None else client_row(row)


_USED_BYTES = select(Client.used_bytes).where(Client.id == bindparam("client_id"))


def used_bytes(s: HotPath, client_id: int) -> int:
    used: int = s.scalar(_USED_BYTES, {"client_id": client_id})
    return used


# FOR NO KEY UPDATE: it excludes the other writers' lock on the row, not the key
# share lock inserts into tables referring to it take.
_LOCK_TREE = (select(Client.id).where(Client.id == bindparam("client_id"))
              .with_for_update(key_share=True))


def lock_tree(s: HotPath, client_id: int) -> None:
    """Lock the client's row until the transaction ends (PostgreSQL; callers skip it
    on SQLite, whose writers are serialised already). Every write transaction in a
    client's tree takes it first, so they follow each other: each sees what those
    before it committed (READ COMMITTED reads anew at each statement), and they lock
    the rows after it in the order they touch them without ever meeting one another
    the other way round."""
    s.execute(_LOCK_TREE, {"client_id": client_id})


def clients(s: Session, kind: str | None = None) -> list[Client]:
    """Client trees, library trees, or (kind None) both, by name."""
    q = select(Client).order_by(Client.name)
    return list(s.scalars(q if kind is None else q.where(Client.kind == kind)))


def user_by_login(s: Session, login: str) -> User | None:
    return s.scalar(select(User).where(User.login == login))


def client_named_alike(s: Session, name: str) -> Client | None:
    """The client or library whose name equals `name` without regard to case."""
    return s.scalar(select(Client).where(func.lower(Client.name) == name.lower()))


def user_named_alike(s: Session, login: str) -> User | None:
    """The user whose login equals `login` without regard to case."""
    return s.scalar(select(User).where(func.lower(User.login) == login.lower()))


def root_node(s: Session, client_id: int) -> Node:
    node = s.scalar(select(Node).where(Node.client_id == client_id, Node.parent_id.is_(None),
                                       Node.deleted_at.is_(None)))
    assert node is not None, f"client {client_id} has no root folder"  # made with the client
    return node


def children_with_versions(s: Session, parent_id: int) -> list[tuple[Node, Version | None]]:
    q = (select(Node, Version).outerjoin(Version, Version.id == Node.current_version_id)
         .where(Node.parent_id == parent_id, Node.deleted_at.is_(None)).order_by(Node.name))
    return [(node, version) for node, version in s.execute(q)]


# Made once: fresh aliases per call would defeat SQLAlchemy's statement cache.
_LEVELS = [aliased(Node, name=f"n{i}") for i in range(66)]
# Statements by kind and depth, built on first use with bound parameters: building a
# chain of joins and its cache key costs more than running it, and a reused
# statement remembers its cache key (at most 2 * (MAX_DEPTH + 1) entries).
_CHAINS: dict[tuple[str, int], AnySelect] = {}


def _chain(entities: Sequence[Any], depth: int) -> AnySelect:
    """SELECT `entities` over the live folders from the client's root down `depth`
    levels, level i+1 being the child of folder i named :name<i>."""
    levels = _LEVELS[:depth + 1]
    stmt = select(*entities).select_from(levels[0]).where(
        levels[0].client_id == bindparam("client_id"), levels[0].parent_id.is_(None),
        levels[0].deleted_at.is_(None))
    for i, (parent, node) in enumerate(zip(levels, levels[1:])):
        stmt = stmt.join(node, (node.parent_id == parent.id)
                         & (node.name == bindparam(f"name{i}"))
                         & node.deleted_at.is_(None) & parent.is_dir)
    return stmt


def _statement(kind: str, depth: int) -> AnySelect:
    stmt = _CHAINS.get((kind, depth))
    if stmt is None:
        if kind == "walk":
            stmt = _chain([_LEVELS[depth]], depth)
        else:  # the folder at `depth`, its child :leaf if any, and the child's version
            folder, node = _LEVELS[depth], _LEVELS[depth + 1]
            stmt = (_chain([folder, node, Version], depth)
                    .outerjoin(node, (node.parent_id == folder.id) & folder.is_dir
                               & (node.name == bindparam("leaf")) & node.deleted_at.is_(None))
                    .outerjoin(Version, Version.id == node.current_version_id))
        _CHAINS[(kind, depth)] = stmt
    return stmt


def _names(client_id: int, rel: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {f"name{i}": name for i, name in enumerate(rel)}
    params["client_id"] = client_id
    return params


def walk(s: Session, client_id: int, rel: Sequence[str]) -> Node | None:
    """The live node at `rel` below the client's root, or None: one query, any depth
    (a chain of self-joins, each level a live child of a folder named rel[i])."""
    node: Node | None = s.scalar(_statement("walk", len(rel)), _names(client_id, rel))
    return node


def walk_row(s: HotPath, client_id: int, rel: Sequence[str]) -> NodeRow | None:
    """As walk, on the hot path."""
    row = s.execute(_statement("walk", len(rel)), _names(client_id, rel)).first()
    return node_row(row) if row is not None else None


def _locating(client_id: int, rel: Sequence[str]) -> tuple[AnySelect, dict[str, Any]]:
    params = _names(client_id, rel[:-1])
    params["leaf"] = rel[-1]
    return _statement("locate", len(rel) - 1), params


def locate(s: Session, client_id: int, rel: Sequence[str]
           ) -> tuple[Node | None, Node | None, Version | None]:
    """(parent, node, version) for a non-empty `rel` in one query: the node at
    rel[:-1] (None if there is none; maybe not a folder), the live node named
    rel[-1] in it (None if there is none) and that node's current version
    (None for a folder)."""
    row = s.execute(*_locating(client_id, rel)).first()
    if row is None:
        return None, None, None
    parent, node, version = row
    return parent, node, version


def locate_rows(s: HotPath, client_id: int, rel: Sequence[str]
                ) -> tuple[NodeRow | None, NodeRow | None, VersionRow | None]:
    """As locate, on the hot path (a row holds the three tables' columns in turn)."""
    row = s.execute(*_locating(client_id, rel)).first()
    if row is None:
        return None, None, None
    return (node_row(row[:NODE_WIDTH]), node_row(row[NODE_WIDTH:2 * NODE_WIDTH]),
            version_row(row[2 * NODE_WIDTH:]))


def versions_of(s: Session, node_id: int) -> list[Version]:
    return list(s.scalars(select(Version).where(Version.node_id == node_id).order_by(Version.id)))


def subtree_ids(s: Session, node_id: int) -> list[int]:
    """Ids of the live nodes below and including `node_id`, breadth first."""
    ids, frontier = [node_id], [node_id]
    while frontier:
        frontier = list(s.scalars(select(Node.id).where(Node.parent_id.in_(frontier),
                                                         Node.deleted_at.is_(None))))
        ids += frontier
    return ids


def live_bytes(s: Session, node_ids: Iterable[int]) -> int:
    q = (select(func.coalesce(func.sum(Version.size), 0))
         .join(Node, Node.current_version_id == Version.id).where(Node.id.in_(node_ids)))
    return int(s.execute(q).scalar_one())  # an aggregate: one row


def live_sizes(s: Session, node_ids: Iterable[int]) -> tuple[int, int]:
    """(total, largest) size of the current versions of `node_ids`."""
    q = (select(func.coalesce(func.sum(Version.size), 0), func.coalesce(func.max(Version.size), 0))
         .join(Node, Node.current_version_id == Version.id).where(Node.id.in_(node_ids)))
    total, largest = s.execute(q).one()
    return int(total), int(largest)


def all_blob_ids(s: Session) -> set[str]:
    return set(s.scalars(select(Version.blob_id)))


# No ORM synchronisation: it would evaluate the bound parameters as None, and the
# callers hold ClientInfo snapshots, not Client rows.
_ADD_USAGE = (update(Client).where(Client.id == bindparam("client_id"))
              .values(used_bytes=Client.used_bytes + bindparam("delta", type_=BigInteger))
              .execution_options(synchronize_session=False))


_DELTA = bindparam("delta", type_=BigInteger)
_CHARGE = (update(Client).where(Client.id == bindparam("client_id"),
                                or_(Client.quota_bytes.is_(None), _DELTA <= 0,
                                    Client.used_bytes + _DELTA <= Client.quota_bytes))
           .values(used_bytes=Client.used_bytes + _DELTA)
           .execution_options(synchronize_session=False))


def charge(s: HotPath, client_id: int, delta: int) -> bool:
    """Add `delta` bytes to a client's usage if its quota allows (a decrease always
    does): one conditional UPDATE, so the check and the change are one step even
    for concurrent commits (the row lock orders them; each sees the other's usage).
    False, changing nothing, if the quota would be exceeded."""
    return s.execute(_CHARGE, {"client_id": client_id, "delta": delta}).rowcount == 1


def add_usage(s: HotPath, client_id: int, delta: int) -> None:
    """Adjust a client's usage in SQL, so concurrent transactions do not lose updates."""
    if delta:
        s.execute(_ADD_USAGE, {"client_id": client_id, "delta": delta})


_NODES: Table = Base.metadata.tables[Node.__tablename__]
_VERSIONS: Table = Base.metadata.tables[Version.__tablename__]
# Core statements: publishing a version is the hot path of every upload, and the
# unit of work costs more than these three statements.
_ADD_NODE = _NODES.insert().returning(_NODES.c.id)
_ADD_VERSION = _VERSIONS.insert().returning(_VERSIONS.c.id)
_MAKE_CURRENT = (_NODES.update().where(_NODES.c.id == bindparam("node_id"))
                 .values(current_version_id=bindparam("version_id"), modified_at=bindparam("now")))


def add_file(s: HotPath, client_id: int, parent_id: int, name: str, now: float) -> int:
    """Insert a live file node without a version yet; return its id."""
    node_id: int = s.execute(_ADD_NODE, dict(
        client_id=client_id, parent_id=parent_id, name=name, is_dir=False, created_at=now,
        modified_at=now)).scalar_one()
    return node_id


def add_version(s: HotPath, version: Version) -> int:
    """Insert the row of a transient `version`; return its id (also set on it)."""
    fields = {c.key: _value(version, c) for c in _VERSIONS.c if c.key != "id"}
    version.id = s.execute(_ADD_VERSION, fields).scalar_one()
    return version.id


def _value(version: Version, column: Any) -> Any:
    """The attribute, or the column's scalar default where a transient row left it
    unset (the ORM applies defaults only when it flushes)."""
    value = getattr(version, column.key)
    if value is None and column.default is not None and column.default.is_scalar:
        return column.default.arg
    return value


_SET_MTIME = (_VERSIONS.update()
              .where(_VERSIONS.c.id == select(_NODES.c.current_version_id)
                     .where(_NODES.c.id == bindparam("file_id")).scalar_subquery())
              .values(mtime=bindparam("new_mtime")))


_SET_NODE_MTIME = (_NODES.update().where(_NODES.c.id == bindparam("folder_id"))
                   .values(modified_at=bindparam("new_mtime")))


def set_file_mtime(s: HotPath, node_id: int, mtime: float) -> None:
    """Set the modification time of a file's current version (SFTP setstat after
    each upload: one statement, no unit of work)."""
    s.execute(_SET_MTIME, {"file_id": node_id, "new_mtime": mtime})


def set_folder_mtime(s: HotPath, node_id: int, mtime: float) -> None:
    s.execute(_SET_NODE_MTIME, {"folder_id": node_id, "new_mtime": mtime})


def make_current(s: HotPath, node_id: int, version_id: int, now: float) -> None:
    s.execute(_MAKE_CURRENT, {"node_id": node_id, "version_id": version_id, "now": now})


def keys_of(s: Session, user_id: int) -> list[UserKey]:
    return list(s.scalars(select(UserKey).where(UserKey.user_id == user_id).order_by(UserKey.id)))
