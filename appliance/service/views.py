"""The read-only views at the top of every tree, `@versions` (appliance.service.history)
and `@trash` (appliance.service.trash): which path is in which, the access decision
for paths in them, and one `Views` object the Session delegates to for them.

No real file or folder can take their names at the top of a tree, and nothing
below them can be written. A view path is decided on what the database walk finds
(`Hit.real`), so a live name that looks like a version or an item is just a name.
"""
import builtins
from typing import Protocol

from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import Node, Version
from strongroom.appliance.errors import Denied, Hidden, NotFound
from strongroom.appliance.service import history, paths, trash
from strongroom.appliance.service.access import AccessPolicy, ClientInfo
from strongroom.appliance.service.entry import Entry, dir_entry
from strongroom.appliance.service.viewhit import Caller, Hit
from strongroom.auth import acl



class View(Protocol):
    """A read-only view: history.HistoryView, trash.TrashView."""
    name: str

    def resolve(self, s: OrmSession, client_id: int, rel: tuple[str, ...]) -> Hit | None: ...

    def stat(self, s: OrmSession, hit: Hit, path: str, caller: Caller) -> Entry: ...

    def list(self, s: OrmSession, hit: Hit, path: str, caller: Caller) -> list[Entry]: ...

    def content(self, s: OrmSession, hit: Hit) -> tuple[Node, Version | None] | None: ...


VIEWS: dict[str, View] = {v.name: v for v in (history.HistoryView(), trash.TrashView())}
_WHY = {history.VIEW: "a read-only view of earlier versions; copy a version out of it "
                      "to restore it",
        trash.VIEW: "a read-only view of deleted files and folders; copy one out of it "
                    "to restore it"}
_READS = ("list", "read")


def in_view(rel: tuple[str, ...]) -> bool:
    return bool(rel) and rel[0] in VIEWS


def _shown(t: paths.Target) -> str:
    return paths.join(t.prefix + t.rel)


class Views:
    """The views as one principal sees them: every decision goes through its
    AccessPolicy, on the real path a view path resolves to. `t` is a
    paths.Target whose `rel` starts with a view's name (in_view)."""

    def __init__(self, policy: AccessPolicy):
        self._policy = policy

    def decide(self, db: OrmSession, client: ClientInfo, t: paths.Target, action: str) -> None:
        """Raise unless `action` is allowed at `t` in a view: the caller must see what
        the path resolves to; only reading is ever allowed."""
        hit = self._hit(db, client, t)
        if hit is None:
            raise self._missing(db, client, t, action)
        # a folder is listed on the way to a grant; a file, its versions and its
        # content need the read right on it
        folder = hit.node.is_dir and hit.version is None and action != "read"
        verdict = self._policy.verdict(db, client, hit.real, acl.LIST if folder else "r")
        # a file (deleted, or a version of one) is seen only with rights on it, even
        # where its path leads on to a granted folder of the same name
        if verdict == "hidden" or not self._policy.visible(db, client, hit.real,
                                                           hit.node.is_dir):
            raise Hidden(f"no such file or folder: {_shown(t)}")
        if action not in _READS:
            raise Denied(f"{t.rel[0]} is {_WHY[t.rel[0]]}")
        if verdict == "denied":
            raise Denied(f"you may not {action} here: {_shown(t)}")

    def _missing(self, db: OrmSession, client: ClientInfo, t: paths.Target,
                 action: str) -> Exception:
        """What to raise when nothing is at `t`: hidden unless the caller sees the
        folder it would be in; then not found to a reader and read-only to a writer."""
        folder = self._hit(db, client, t.parent()) if len(t.rel) > 1 else None
        if folder is None or self._policy.verdict(db, client, folder.real,
                                                  acl.LIST) == "hidden":
            return Hidden(f"no such file or folder: {_shown(t)}")
        if action in _READS:
            return NotFound(f"no such file or folder: {_shown(t)}")
        return Denied(f"{t.rel[0]} is {_WHY[t.rel[0]]}")

    def _hit(self, db: OrmSession, client: ClientInfo, t: paths.Target) -> Hit | None:
        return VIEWS[t.rel[0]].resolve(db, client.id, t.rel[1:])

    def found(self, db: OrmSession, client: ClientInfo, t: paths.Target) -> Hit:
        """What `t` resolves to; NotFound if nothing."""
        hit = self._hit(db, client, t)
        if hit is None:
            raise NotFound(f"no such file or folder: {_shown(t)}")
        return hit

    def _caller(self, db: OrmSession, client: ClientInfo, t: paths.Target) -> Caller:
        return Caller(visible=lambda real, is_dir: self._policy.visible(db, client, real, is_dir),
                      place=lambda real: _shown(t.at(real)))

    def stat(self, db: OrmSession, client: ClientInfo, t: paths.Target) -> Entry:
        hit = self.found(db, client, t)
        return VIEWS[t.rel[0]].stat(db, hit, _shown(t), self._caller(db, client, t))

    def list(self, db: OrmSession, client: ClientInfo, t: paths.Target) -> list[Entry]:
        hit = self.found(db, client, t)
        return VIEWS[t.rel[0]].list(db, hit, _shown(t), self._caller(db, client, t))

    def content(self, db: OrmSession, client: ClientInfo, t: paths.Target
                ) -> tuple[Node, Version]:
        """(node, version) of a file in a view."""
        content = VIEWS[t.rel[0]].content(db, self.found(db, client, t))
        if content is None or content[1] is None:
            raise NotFound(f"not a file: {_shown(t)}")
        return content[0], content[1]

    def root_entries(self, db: OrmSession, client: ClientInfo, t: paths.Target
                     ) -> builtins.list[Entry]:
        """The views, as folders in the top folder of a tree."""
        base, root = _shown(t).rstrip("/"), repo.root_node(db, client.id)
        return [dir_entry(f"{base}/{name}", name, root) for name in VIEWS]
