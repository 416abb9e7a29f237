"""The read-only trash view, mixed into Session: `@trash` at the top of every tree
shows what was deleted, where it was. It holds the folders on the way to deleted
items, and each deleted file or folder named '2026-12-01 13-40-02 d42 report.pdf'
(when it was deleted, UTC; its id; its name). A deleted folder opens as it was when
it was deleted, plus, named the same way, what had been deleted from it before.
Any client can browse the view and copy an item out of it, which restores it (a
WebDAV COPY, or download and upload); copying a deleted folder restores it as it
was, without those earlier deletions, and copying a folder on the way copies the
items below it under their names in the view.

Rights are those of an item's original path (copying one out needs read there);
nothing below `@trash` can be written.
"""
import dataclasses
import datetime
import re

from sqlalchemy import or_, select

from appliance.db import repo
from appliance.db.models import Node, Version
from appliance.errors import NotFound
from appliance.session.entry import Entry, dir_entry, entry_for

VIEW = "@trash"
# an id of at most 10 digits: a longer one is no row, and PostgreSQL would refuse it
_NAME = re.compile(r"^\d{4}-\d\d-\d\d \d\d-\d\d-\d\d d(\d{1,10}) (.+)$")


def trash_name(node) -> str:
    when = datetime.datetime.fromtimestamp(node.deleted_at, datetime.timezone.utc)
    return f"{when:%Y-%m-%d %H-%M-%S} d{node.id} {node.name}"


def is_item_name(name: str) -> bool:
    return _NAME.match(name) is not None


def deleted_at(name: str) -> float:
    """When the item `name` was deleted (to the second)."""
    when = datetime.datetime.strptime(name[:19], "%Y-%m-%d %H-%M-%S")
    return when.replace(tzinfo=datetime.timezone.utc).timestamp()


def within_item(rel: tuple) -> bool:
    """True if a path below the view is a deleted item or inside one (not a live
    folder on the way to them)."""
    return any(_NAME.match(name) for name in rel)


def original_rel(rel: tuple) -> tuple:
    """The original path of a path below the view (for rights)."""
    return tuple(m.group(2) if (m := _NAME.match(name)) else name for name in rel)


def _restorable(node) -> bool:
    """A deleted row with something in it (a file moved over another keeps no version)."""
    return node.is_dir or node.current_version_id is not None


class TrashMixin:
    def _trash_walk(self, s, client, t) -> tuple[Node, bool]:
        """The node at a path in the view and whether it is deleted content (a deleted
        item or what was inside it) rather than a live folder on the way."""
        node, inside = repo.root_node(s, client.id), False
        for name in t.rel[1:]:
            child = self._trash_child(s, node, name, inside) if node.is_dir else None
            if child is None:
                raise NotFound(f"no such file or folder in the trash: {self.view_path(t)}")
            node, inside = child, inside or child.deleted_at is not None
        return node, inside

    def _trash_child(self, s, folder, name: str, inside: bool) -> Node | None:
        m = _NAME.match(name)
        item = s.get(Node, int(m.group(1))) if m and int(m.group(1)) < 2**31 else None
        if item is not None and item.parent_id == folder.id and item.deleted_at is not None \
                and _restorable(item) and trash_name(item) == name:
            return item
        child = s.scalar(select(Node).where(Node.parent_id == folder.id, Node.name == name,
                                            Node.deleted_at.is_(None)))
        return child if child is not None and (inside or child.is_dir) else None

    def _trash_stat(self, s, client, t) -> Entry:
        node, _ = self._trash_walk(s, client, t)
        if len(t.rel) == 1:
            return dir_entry(self.view_path(t), VIEW, node)
        version = None if node.is_dir else s.get(Version, node.current_version_id)
        return _named(entry_for(self.view_path(t), node, version), t.rel[-1])

    def _trash_list(self, s, client, t) -> list[Entry]:
        node, inside = self._trash_walk(s, client, t)
        if not node.is_dir:
            raise NotFound(f"not a folder: {self.view_path(t)}")
        base = self.view_path(t).rstrip("/")
        rel = original_rel(t.rel[1:])
        everything = self._may_read_all(s, client, rel)
        leads = None if inside else _folders_leading_to_trash(s, client.id)
        entries = []
        for child, version in _children(s, node.id, inside):
            if child.deleted_at is not None:
                name = trash_name(child)
            elif inside or child.id in leads:
                name = child.name
            else:
                continue
            if everything or self._visible_child(s, client, rel, child.name):
                entries.append(_named(entry_for(f"{base}/{name}", child, version), name))
        return sorted(entries, key=lambda e: e.name)

    def _trash_version(self, s, client, t):
        node, _ = self._trash_walk(s, client, t)
        if node.is_dir:
            raise NotFound(f"is a folder: {self.view_path(t)}")
        return node, s.get(Version, node.current_version_id)


def _children(s, folder_id: int, inside: bool):
    """(node, version) below a folder: its deleted items, and its live folders (of a
    live folder) or everything it held when it was deleted (of a deleted one)."""
    q = (select(Node, Version).outerjoin(Version, Version.id == Node.current_version_id)
         .where(Node.parent_id == folder_id))
    if not inside:
        q = q.where(or_(Node.is_dir, Node.deleted_at.is_not(None)))
    for node, version in s.execute(q):
        if node.deleted_at is None or _restorable(node):
            yield node, version


def _folders_leading_to_trash(s, client_id: int) -> set[int]:
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


def _named(entry: Entry, name: str) -> Entry:
    return dataclasses.replace(entry, name=name)
