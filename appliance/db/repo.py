"""Queries over the file tree. Every function takes an open ORM session."""
from sqlalchemy import func, select, update
from sqlalchemy.orm import aliased

from appliance.db.models import Client, Node, User, UserKey, Version


def client_by_name(s, name: str) -> Client | None:
    return s.scalar(select(Client).where(Client.name == name))


def clients(s, kind: str | None = None) -> list[Client]:
    """Client trees, library trees, or (kind None) both, by name."""
    q = select(Client).order_by(Client.name)
    return list(s.scalars(q if kind is None else q.where(Client.kind == kind)))


def user_by_login(s, login: str) -> User | None:
    return s.scalar(select(User).where(User.login == login))


def root_node(s, client_id: int) -> Node:
    return s.scalar(select(Node).where(Node.client_id == client_id, Node.parent_id.is_(None),
                                       Node.deleted_at.is_(None)))


def child(s, client_id: int, parent_id: int, name: str) -> Node | None:
    return s.scalar(select(Node).where(Node.client_id == client_id, Node.parent_id == parent_id,
                                       Node.name == name, Node.deleted_at.is_(None)))


def children_with_versions(s, parent_id: int) -> list[tuple[Node, Version | None]]:
    q = (select(Node, Version).outerjoin(Version, Version.id == Node.current_version_id)
         .where(Node.parent_id == parent_id, Node.deleted_at.is_(None)).order_by(Node.name))
    return [tuple(row) for row in s.execute(q)]


# Made once: fresh aliases per call would defeat SQLAlchemy's statement cache.
_LEVELS = [aliased(Node, name=f"n{i}") for i in range(66)]


def walk(s, client_id: int, rel) -> Node | None:
    """The live node at `rel` below the client's root, or None: one query, any depth
    (a chain of self-joins, each level a live child of a folder named rel[i])."""
    levels = _LEVELS[:len(rel) + 1]
    q = select(levels[-1]).select_from(levels[0]).where(
        levels[0].client_id == client_id, levels[0].parent_id.is_(None),
        levels[0].deleted_at.is_(None))
    for parent, node, name in zip(levels, levels[1:], rel):
        q = q.join(node, (node.parent_id == parent.id) & (node.name == name)
                   & node.deleted_at.is_(None) & parent.is_dir)
    return s.scalar(q)


def versions_of(s, node_id: int) -> list[Version]:
    return list(s.scalars(select(Version).where(Version.node_id == node_id).order_by(Version.id)))


def subtree_ids(s, node_id: int) -> list[int]:
    """Ids of the live nodes below and including `node_id`, breadth first."""
    ids, frontier = [node_id], [node_id]
    while frontier:
        frontier = list(s.scalars(select(Node.id).where(Node.parent_id.in_(frontier),
                                                         Node.deleted_at.is_(None))))
        ids += frontier
    return ids


def live_bytes(s, node_ids) -> int:
    q = (select(func.coalesce(func.sum(Version.size), 0))
         .join(Node, Node.current_version_id == Version.id).where(Node.id.in_(node_ids)))
    return int(s.scalar(q))


def all_blob_ids(s) -> set[str]:
    return set(s.scalars(select(Version.blob_id)))


def add_usage(s, client_id: int, delta: int) -> None:
    """Adjust a client's usage in SQL, so concurrent transactions do not lose updates."""
    if delta:
        s.execute(update(Client).where(Client.id == client_id)
                  .values(used_bytes=Client.used_bytes + delta))


def keys_of(s, user_id: int) -> list[UserKey]:
    return list(s.scalars(select(UserKey).where(UserKey.user_id == user_id).order_by(UserKey.id)))
