"""The read-only views at the top of every tree, `@versions` (appliance.session.history)
and `@trash` (appliance.session.trash): which path is in which, and one dispatch for
the operations Session serves from them. No real file or folder can take their names
at the top of a tree, and nothing below them can be written."""
from appliance.db import repo
from appliance.errors import Denied
from appliance.session import history, trash
from appliance.session.entry import dir_entry
from appliance.session.history import HistoryMixin
from appliance.session.trash import TrashMixin

VIEWS = (history.VIEW, trash.VIEW)
_WHY = {history.VIEW: "a read-only view of earlier versions; copy a version out of it "
                      "to restore it",
        trash.VIEW: "a read-only view of deleted files and folders; copy one out of it "
                    "to restore it"}


def in_view(rel: tuple) -> bool:
    return bool(rel) and rel[0] in VIEWS


def real_rel(rel: tuple) -> tuple:
    """The real path a path (maybe in a view) is about, for rights."""
    if rel[:1] == (trash.VIEW,):
        return trash.original_rel(rel[1:])
    return history.real_rel(rel)


class ViewsMixin(HistoryMixin, TrashMixin):
    def _refuse_writes_in_view(self, t, action: str) -> None:
        if in_view(t.rel) and action not in ("list", "read"):
            raise Denied(f"{t.rel[0]} is {_WHY[t.rel[0]]}")

    def _view_stat(self, s, client, t):
        return self._in_trash(t, self._trash_stat, self._history_stat)(s, client, t)

    def _view_list(self, s, client, t):
        return self._in_trash(t, self._trash_list, self._history_list)(s, client, t)

    def _view_version(self, s, client, t):
        """(node, version) of a file in a view."""
        return self._in_trash(t, self._trash_version, self._history_version)(s, client, t)

    def _view_find(self, s, client, t) -> None:
        """NotFound unless `t` exists in its view."""
        self._in_trash(t, self._trash_walk, self._history)(s, client, t)

    def _view_root_entries(self, s, client, t) -> list:
        """The views, as folders in the top folder of a tree."""
        base, root = self.view_path(t).rstrip("/"), repo.root_node(s, client.id)
        return [dir_entry(f"{base}/{name}", name, root) for name in VIEWS]

    @staticmethod
    def _in_trash(t, in_trash, in_versions):
        return in_trash if t.rel[0] == trash.VIEW else in_versions
