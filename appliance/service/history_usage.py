"""What a client's history takes, apart from its current files (clients.used_bytes):
`history_bytes`, the older versions of live files, and `trash_bytes`, every version of
what was deleted. One query per number, grouped by client, whatever the tree's size.

A node is in the trash when it, or a folder above it, has deleted_at set (deleting a
folder marks only the folder), so both numbers stand on one recursive query of the
deleted nodes and everything below them.
"""
from collections.abc import Collection

from sqlalchemy import CTE, Select, func, or_, select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.models import Node, Version


def _deleted(client_ids: Collection[int] | None) -> CTE:
    """The ids of deleted nodes and of all nodes below them."""
    roots = select(Node.id).where(Node.deleted_at.is_not(None))
    if client_ids is not None:
        roots = roots.where(Node.client_id.in_(client_ids))
    deleted = roots.cte("deleted_nodes", recursive=True)
    # UNION, not UNION ALL: an item deleted inside a folder deleted later is reached twice
    return deleted.union(select(Node.id).join(deleted, Node.parent_id == deleted.c.id))


def _per_client(q: Select[int, int], client_ids: Collection[int] | None
                ) -> Select[int, int]:
    if client_ids is not None:
        q = q.where(Node.client_id.in_(client_ids))
    return q.group_by(Node.client_id)


def history_bytes(s: OrmSession, client_ids: Collection[int] | None = None) -> dict[int, int]:
    """{client id: bytes of the versions of live files that are not current} for the
    clients given (None: all); a client with none is left out."""
    deleted = _deleted(client_ids)
    q = (select(Node.client_id, func.sum(Version.size))
         .join(Node, Node.id == Version.node_id)
         .where(Node.id.not_in(select(deleted.c.id)))
         .where(or_(Node.current_version_id.is_(None), Version.id != Node.current_version_id)))
    return {cid: int(n) for cid, n in s.execute(_per_client(q, client_ids))}


def trash_bytes(s: OrmSession, client_ids: Collection[int] | None = None) -> dict[int, int]:
    """{client id: bytes of all versions of deleted files, and of files below deleted
    folders} for the clients given (None: all); a client with none is left out."""
    deleted = _deleted(client_ids)
    q = (select(Node.client_id, func.sum(Version.size))
         .join(Node, Node.id == Version.node_id)
         .where(Node.id.in_(select(deleted.c.id))))
    return {cid: int(n) for cid, n in s.execute(_per_client(q, client_ids))}
