"""The read-only views at the top of every tree, `@versions` (appliance.service.history)
and `@trash` (appliance.service.trash): which path is in which, the access decision
for paths in them, and one dispatch for the operations Session serves from them.

No real file or folder can take their names at the top of a tree, and nothing
below them can be written. A view path is decided on what the database walk finds
(`Hit.real`), so a live name that looks like a version or an item is just a name.
"""
from strongroom.appliance.db import repo
from strongroom.appliance.errors import Denied, Hidden, NotFound
from strongroom.appliance.service import history, trash
from strongroom.appliance.service.entry import dir_entry
from strongroom.appliance.service.viewhit import Caller, Hit
from strongroom.auth import acl

VIEWS = {v.name: v for v in (history.HistoryView(), trash.TrashView())}
_WHY = {history.VIEW: "a read-only view of earlier versions; copy a version out of it "
                      "to restore it",
        trash.VIEW: "a read-only view of deleted files and folders; copy one out of it "
                    "to restore it"}
_READS = ("list", "read")


def in_view(rel: tuple) -> bool:
    return bool(rel) and rel[0] in VIEWS


class ViewsMixin:
    """Session's side of the views; needs `_grant_verdict`, `_visible_real` and
    `view_path` of Session."""

    def _view_decide(self, s, client, t, action: str) -> None:
        """Raise unless `action` is allowed at `t` in a view: the caller must see what
        the path resolves to; only reading is ever allowed."""
        hit = self._view_hit(s, client, t)
        if hit is None:
            self._view_decide_missing(s, client, t, action)
        # a folder is listed on the way to a grant; a file, its versions and its
        # content need the read right on it
        folder = hit.node.is_dir and hit.version is None and action != "read"
        verdict = self._grant_verdict(s, client, hit.real, acl.LIST if folder else "r")
        # a file (deleted, or a version of one) is seen only with rights on it, even
        # where its path leads on to a granted folder of the same name
        if verdict == "hidden" or not self._visible_real(s, client, hit.real, hit.node.is_dir):
            raise Hidden(f"no such file or folder: {self.view_path(t)}")
        if action not in _READS:
            raise Denied(f"{t.rel[0]} is {_WHY[t.rel[0]]}")
        if verdict == "denied":
            raise Denied(f"you may not {action} here: {self.view_path(t)}")

    def _view_decide_missing(self, s, client, t, action: str):
        """Nothing is at `t`: hidden unless the caller sees the folder it would be in;
        then not found to a reader and read-only to a writer."""
        folder = self._view_hit(s, client, t.parent()) if len(t.rel) > 1 else None
        if folder is None or self._grant_verdict(s, client, folder.real, acl.LIST) == "hidden":
            raise Hidden(f"no such file or folder: {self.view_path(t)}")
        if action in _READS:
            raise NotFound(f"no such file or folder: {self.view_path(t)}")
        raise Denied(f"{t.rel[0]} is {_WHY[t.rel[0]]}")

    def _view_hit(self, s, client, t) -> Hit | None:
        return VIEWS[t.rel[0]].resolve(s, client.id, t.rel[1:])

    def _view_found(self, s, client, t) -> Hit:
        hit = self._view_hit(s, client, t)
        if hit is None:
            raise NotFound(f"no such file or folder: {self.view_path(t)}")
        return hit

    def _caller(self, s, client, t) -> Caller:
        return Caller(visible=lambda real, is_dir: self._visible_real(s, client, real, is_dir),
                      place=lambda real: self.view_path(t.at(real)))

    def _view_stat(self, s, client, t):
        hit = self._view_found(s, client, t)
        return VIEWS[t.rel[0]].stat(s, hit, self.view_path(t), self._caller(s, client, t))

    def _view_list(self, s, client, t):
        hit = self._view_found(s, client, t)
        return VIEWS[t.rel[0]].list(s, hit, self.view_path(t), self._caller(s, client, t))

    def _view_version(self, s, client, t):
        """(node, version) of a file in a view."""
        content = VIEWS[t.rel[0]].content(s, self._view_found(s, client, t))
        if content is None:
            raise NotFound(f"not a file: {self.view_path(t)}")
        return content

    def _view_root_entries(self, s, client, t) -> list:
        """The views, as folders in the top folder of a tree."""
        base, root = self.view_path(t).rstrip("/"), repo.root_node(s, client.id)
        return [dir_entry(f"{base}/{name}", name, root) for name in VIEWS]
