"""The read-only trash view: `@trash` at the top of every tree shows what was
deleted, where it was. It holds the folders on the way to deleted items, and each
deleted file or folder named '2026-12-01 13-40-02 d42 report.pdf' (when it was
deleted, UTC; its id; its name). A deleted folder opens as it was when it was
deleted, plus, named the same way, what had been deleted from it before. Any
client can browse the view and copy an item out of it, which restores it (a
WebDAV COPY, or download and upload); copying a deleted folder restores it as it
was, without those earlier deletions, and copying a folder on the way copies the
items below it under their names in the view.

A path in the view is resolved by walking the database, never by reading meaning
into a name: a live folder called '2026-12-01 13-40-02 d42 report.pdf' (one dragged
out of the trash, say) is that folder. Rights are those of the path the rows
walked spell, with each item under its own name (copying one out needs read
there); nothing below `@trash` can be written.
"""
import dataclasses
import datetime
import re
from collections.abc import Iterator

from sqlalchemy import or_, select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import Node, Version
from strongroom.appliance.errors import NotFound
from strongroom.appliance.service.entry import Entry, dir_entry, entry_for
from strongroom.appliance.service.paths import MAX_DEPTH
from strongroom.appliance.service.viewhit import Caller, Hit

VIEW = "@trash"
# an id of at most 10 digits: a longer one is no row, and PostgreSQL would refuse it
_ITEM_ID = re.compile(r"^\d{4}-\d\d-\d\d \d\d-\d\d-\d\d d(\d{1,10}) ")


def trash_name(node: Node) -> str:
    """The view name of deleted item `node`."""
    return f"{_prefix(node.id, node.deleted_at)}{node.name}"


def _prefix(node_id: int | None, deleted_at: float | None) -> str:
    if node_id is None or deleted_at is None:
        raise ValueError("only a deleted node has a name in the trash")
    when = datetime.datetime.fromtimestamp(deleted_at, datetime.timezone.utc)
    return f"{when:%Y-%m-%d %H-%M-%S} d{node_id} "


def original_name(entry: Entry) -> str:
    """The name a deleted item had (its entry's name without what the view added)."""
    return entry.name.removeprefix(_prefix(entry.node_id, entry.deleted_at))


def _restorable(node: Node) -> bool:
    """A deleted row with something in it (a file moved over another keeps no version)."""
    return node.is_dir or node.current_version_id is not None


def item_path(s: OrmSession, node: Node | None) -> tuple[str, ...] | None:
    """Where deleted item `node` is in the view (the names below `@trash`), or None if
    `node` is no item: the live folders on the way by their names, deleted ones (an
    item deleted from a folder before the folder was) as items."""
    if node is None or node.deleted_at is None or not _restorable(node):
        return None
    names: list[str] = []
    for _ in range(MAX_DEPTH + 1):      # a tree is at most that deep
        if node.parent_id is None:
            return tuple(reversed(names))
        names.append(trash_name(node) if node.deleted_at is not None else node.name)
        node = s.get(Node, node.parent_id)
        if node is None:
            return None
    return None


class TrashView:
    """Resolves and shows paths below `@trash` (see the module docstring)."""

    name = VIEW

    def resolve(self, s: OrmSession, client_id: int, rel: tuple[str, ...]) -> Hit | None:
        """The node at `rel` (below the view's name), or None."""
        node, deleted = repo.root_node(s, client_id), False
        real: tuple[str, ...] = ()
        for name in rel:
            child = _child(s, node, name, deleted) if node.is_dir else None
            if child is None:
                return None
            node, real = child, real + (child.name,)
            deleted = deleted or child.deleted_at is not None
        return Hit(node, None, real, deleted)

    def stat(self, s: OrmSession, hit: Hit, path: str, caller: Caller) -> Entry:
        if not hit.real:
            return dir_entry(path, VIEW, hit.node)
        version = None if hit.node.is_dir or hit.node.current_version_id is None \
            else s.get(Version, hit.node.current_version_id)
        name = path.rstrip("/").rsplit("/", 1)[-1]
        return _entry(path, name, hit.node, version, hit.deleted, caller.place(hit.real))

    def list(self, s: OrmSession, hit: Hit, path: str, caller: Caller) -> list[Entry]:
        if not hit.node.is_dir:
            raise NotFound(f"not a folder: {path}")
        base = path.rstrip("/")
        # (inside deleted content every child shows, so no folder needs to lead anywhere)
        leads = set() if hit.deleted else _folders_leading_to_trash(s, hit.node.client_id)
        children = list(_children(s, hit.node.id, hit.deleted))
        # a live child named exactly like an item beside it is shadowed: the name
        # opens the item
        items = {trash_name(c) for c, _ in children if c.deleted_at is not None}
        entries: list[Entry] = []
        for child, version in children:
            if child.deleted_at is not None:
                name = trash_name(child)
            elif (hit.deleted or child.id in leads) and child.name not in items:
                name = child.name
            else:
                continue
            real = hit.real + (child.name,)
            if caller.visible(real, child.is_dir):
                deleted = hit.deleted or child.deleted_at is not None
                entries.append(_entry(f"{base}/{name}", name, child, version, deleted,
                                      caller.place(real)))
        return sorted(entries, key=lambda e: e.name)

    def content(self, s: OrmSession, hit: Hit) -> tuple[Node, Version | None] | None:
        """(node, version) to read, or None if `hit` is a folder."""
        if hit.node.is_dir or not hit.real or hit.node.current_version_id is None:
            return None
        return hit.node, s.get(Version, hit.node.current_version_id)


def _child(s: OrmSession, folder: Node, name: str, deleted: bool) -> Node | None:
    """The deleted item of `folder` whose view name is exactly `name`, else its live
    child `name` (any child inside deleted content; only folders on the way)."""
    m = _ITEM_ID.match(name)
    item = s.get(Node, int(m.group(1))) if m else None
    if item is not None and item.parent_id == folder.id and item.deleted_at is not None \
            and _restorable(item) and trash_name(item) == name:
        return item
    child = s.scalar(select(Node).where(Node.parent_id == folder.id, Node.name == name,
                                        Node.deleted_at.is_(None)))
    return child if child is not None and (deleted or child.is_dir) else None


def _entry(path: str, name: str, node: Node, version: Version | None, deleted: bool,
           origin: str) -> Entry:
    return dataclasses.replace(entry_for(path, node, version), name=name, origin=origin,
                               deleted_at=node.deleted_at, deleted=deleted)


def _children(s: OrmSession, folder_id: int, inside: bool
              ) -> Iterator[tuple[Node, Version | None]]:
    """(node, version) below a folder: its deleted items, and its live folders (of a
    live folder) or everything it held when it was deleted (of a deleted one)."""
    q = (select(Node, Version).outerjoin(Version, Version.id == Node.current_version_id)
         .where(Node.parent_id == folder_id))
    if not inside:
        q = q.where(or_(Node.is_dir, Node.deleted_at.is_not(None)))
    for node, version in s.execute(q):
        if node.deleted_at is None or _restorable(node):
            yield node, version


def _folders_leading_to_trash(s: OrmSession, client_id: int) -> set[int]:
    """Ids of the live folders with a deleted item somewhere below them."""
    parents = set(s.scalars(select(Node.parent_id).where(
        Node.client_id == client_id, Node.deleted_at.is_not(None),
        or_(Node.is_dir, Node.current_version_id.is_not(None)))))
    parent_of = dict(s.execute(select(Node.id, Node.parent_id).where(
        Node.client_id == client_id, Node.is_dir, Node.deleted_at.is_(None))).all())
    leads: set[int] = set()
    for folder in parents:
        while folder in parent_of and folder not in leads:
            leads.add(folder)
            folder = parent_of[folder]
    return leads
