"""What one maintenance run removes from one client's tree, decided from its rows
(no database here): version retention, trash expiry, then the history budget
(appliance.service.maintenance carries the plan out).

- **Retention**: each file's versions (live or in the trash) through
  retention_rules.to_remove; a file's current version is never among them.
- **Trash expiry**: a deleted item (a node with deleted_at) older than trash_days
  goes with everything below it, unless a version below it is pinned.
- **History budget**: while the client's history (the non-current versions of live
  files) and trash (every version below a deleted item) exceed history_quota, the
  oldest of these go first: a non-current version (by when it was made) that is
  neither pinned nor one of its file's two newest, or a whole trash item (by when
  it was deleted) with no pinned version below it.
"""
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from strongroom.appliance.service.retention_rules import Policy, VersionFacts, to_remove



class NodeRow(NamedTuple):
    id: int
    parent_id: int | None
    name: str
    is_dir: bool
    current_version_id: int | None
    deleted_at: float | None


class VersionRow(NamedTuple):
    id: int
    node_id: int
    created_at: float
    size: int
    pinned: bool
    blob_id: str


@dataclass(frozen=True)
class Removal:
    """One version removed on its own: `path` is its file's path in the tree."""
    version: VersionRow
    path: str
    reason: str          # "retention" | "history budget"


@dataclass(frozen=True)
class ItemRemoval:
    """A trash item purged with everything below it."""
    node: NodeRow
    path: str            # where it was, in the tree
    node_ids: tuple[int, ...]       # it and everything below it, deepest first
    versions: tuple[VersionRow, ...]
    reason: str          # "trash expiry" | "history budget"
    shown: bool          # whether @trash shows it (a file moved over another: not)


@dataclass
class Plan:
    """One client's removals."""
    versions: list[Removal] = field(default_factory=list)
    items: list[ItemRemoval] = field(default_factory=list)

    def all_versions(self) -> list[VersionRow]:
        return [r.version for r in self.versions] + [v for i in self.items for v in i.versions]

    def node_ids(self) -> list[int]:
        return [n for item in self.items for n in item.node_ids]

    def bytes(self) -> int:
        return sum(v.size for v in self.all_versions())


class Tree:
    """A client's nodes and versions, with the walks the plan needs."""

    def __init__(self, nodes: Iterable[NodeRow], versions: Iterable[VersionRow]) -> None:
        self.nodes = {n.id: n for n in nodes}
        self.children: dict[int, list[int]] = defaultdict(list)
        for n in self.nodes.values():
            if n.parent_id is not None:
                self.children[n.parent_id].append(n.id)
        self.versions: dict[int, list[VersionRow]] = defaultdict(list)
        self.version: dict[int, VersionRow] = {}
        for v in sorted(versions, key=lambda v: (v.created_at, v.id)):
            self.versions[v.node_id].append(v)
            self.version[v.id] = v

    def path(self, node_id: int) -> str:
        """'/a/b' inside the tree ('' for its top folder)."""
        names: list[str] = []
        node = self.nodes.get(node_id)
        while node is not None and node.parent_id is not None:
            names.append(node.name)
            node = self.nodes.get(node.parent_id)
        return "".join(f"/{n}" for n in reversed(names))

    def in_trash(self, node_id: int) -> bool:
        """Whether the node or a folder above it is deleted."""
        node = self.nodes.get(node_id)
        while node is not None:
            if node.deleted_at is not None:
                return True
            node = self.nodes.get(node.parent_id) if node.parent_id is not None else None
        return False

    def depth(self, node_id: int) -> int:
        depth, node = 0, self.nodes.get(node_id)
        while node is not None and node.parent_id is not None:
            depth, node = depth + 1, self.nodes.get(node.parent_id)
        return depth

    def below(self, node_id: int) -> list[int]:
        """The node and everything below it, deepest first (children before their
        folder, so deleting in this order never orphans a row)."""
        found, frontier = [node_id], [node_id]
        while frontier:
            frontier = [c for f in frontier for c in self.children.get(f, ())]
            found += frontier
        return found[::-1]


def plan(tree: Tree, policy: Policy, now: float) -> Plan:
    """The removals of one run at time `now` (see the module docstring)."""
    result = Plan()
    gone: set[int] = set()          # nodes purged
    removed: set[int] = set()       # versions removed
    for item in _expired(tree, policy, now):
        _take_item(result, tree, item, "trash expiry", gone, removed)
    for node_id, versions in tree.versions.items():
        node = tree.nodes.get(node_id)
        if node is None or node.is_dir or node_id in gone:
            continue
        facts = [VersionFacts(id=v.id, created_at=v.created_at, size=v.size, pinned=v.pinned)
                 for v in versions]
        ids = to_remove(facts, now, policy) - {node.current_version_id}
        for v in versions:
            if v.id in ids and not v.pinned:
                result.versions.append(Removal(v, tree.path(node_id), "retention"))
                removed.add(v.id)
    if policy.history_quota is not None:
        _budget(result, tree, policy.history_quota, gone, removed)
    return result


def _expired(tree: Tree, policy: Policy, now: float) -> list[int]:
    """Deleted items older than trash_days, innermost first (an item deleted from a
    folder before the folder was is an item of its own in @trash)."""
    cutoff = now - policy.trash_days
    old = [n.id for n in tree.nodes.values()
           if n.deleted_at is not None and n.deleted_at < cutoff]
    return sorted(old, key=tree.depth, reverse=True)


def _pinned_below(tree: Tree, ids: Sequence[int]) -> bool:
    return any(v.pinned for n in ids for v in tree.versions.get(n, ()))


def _take_item(result: Plan, tree: Tree, item: int, reason: str, gone: set[int],
               removed: set[int]) -> int:
    """Purge `item` unless purged already or something below it is pinned; returns
    the bytes of the versions it frees."""
    if item in gone:
        return 0
    ids = tree.below(item)
    if _pinned_below(tree, ids):
        return 0
    versions = tuple(v for n in ids for v in tree.versions.get(n, ()) if v.id not in removed)
    node = tree.nodes[item]
    shown = node.is_dir or node.current_version_id is not None
    result.items.append(ItemRemoval(node, tree.path(item), tuple(ids), versions, reason, shown))
    gone.update(ids)
    removed.update(v.id for v in versions)
    return sum(v.size for v in versions)


def _budget(result: Plan, tree: Tree, quota: int, gone: set[int], removed: set[int]) -> None:
    """The history budget: the oldest candidates go until history + trash fit."""
    used, candidates = 0, []
    for node_id, versions in tree.versions.items():
        node = tree.nodes.get(node_id)
        if node is None or node_id in gone:
            continue
        left = [v for v in versions if v.id not in removed]
        if tree.in_trash(node_id):
            used += sum(v.size for v in left)
            continue
        used += sum(v.size for v in left if v.id != node.current_version_id)
        keep = {v.id for v in left[-2:]} | {node.current_version_id}
        candidates += [(v.created_at, 0, v.id) for v in left
                       if v.id not in keep and not v.pinned]
    candidates += [(n.deleted_at, 1, n.id) for n in tree.nodes.values()
                   if n.deleted_at is not None and n.id not in gone]
    for _when, kind, ident in sorted(candidates):
        if used <= quota:
            return
        if kind == 1:
            used -= _take_item(result, tree, ident, "history budget", gone, removed)
        elif ident not in removed:
            version = tree.version[ident]
            result.versions.append(Removal(version, tree.path(version.node_id),
                                           "history budget"))
            removed.add(ident)
            used -= version.size
