"""The administrator's full tree paths: '/<client>/...' and '/<library>/...' name a
tree by their first part, the same for every command; a trash item is also named by
its id alone ('d42', as `strongroom trash list` shows it). Mixed into Admin."""
import re

from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import Client, Node
from strongroom.appliance.errors import BadRequest, NotFound
from strongroom.appliance.service import paths, trash
from strongroom.appliance.service.admin_base import AdminBase
from strongroom.appliance.service.principal import Principal

# an id of at most 10 digits, as in the trash view's names
_ITEM_ID = re.compile(r"^d(\d{1,10})$")


def tree_row(s: OrmSession, name: str) -> Client:
    """The client or library row `name`, or one line saying there is none."""
    tree = repo.client_by_name(s, name)
    if tree is None:
        raise NotFound(f"no such client or library: {name}")
    return tree


class TreesMixin(AdminBase):
    def tree_of(self, path: str) -> str:
        """The client or library a full tree path is in (refused for '/' and for a
        first part that names neither: a path as a client user sees it, say)."""
        parts = paths.clean(path)
        if not parts:
            raise BadRequest(f"give a full tree path, /CLIENT/... or /LIBRARY/..., "
                             f"not {path!r}")
        with self.app.db.read() as s:
            return tree_row(s, parts[0]).name

    def restore_trash(self, item: str, dest: str | None = None, *,
                      overwrite: bool = False) -> str:
        """Copy a deleted file or folder back, to full path `dest` or else to the path
        it had, through the administrator's Session (audited there); return where.
        `item` is its id ('d42') or its path in the view ('/<tree>/@trash/...')."""
        if dest is not None:
            self.tree_of(dest)
        session = self.app.session(Principal(login=self.actor, role="admin"), self.protocol)
        entry = session.stat(self._trash_path(item))
        # a folder on the way to items, or inside one (an item says where it was)
        if entry.deleted_at is None or entry.origin is None:
            raise _not_an_item(item)
        to = dest or entry.origin
        session.copy(entry.path, to, overwrite=overwrite)
        return to

    def _trash_path(self, item: str) -> str:
        if item.startswith("/"):
            parts = paths.clean(item)
            self.tree_of(item)
            if parts[1:2] != (trash.VIEW,) or len(parts) < 3:
                raise _not_an_item(item)
            return item
        m = _ITEM_ID.match(item)
        with self.app.db.read() as s:
            node = s.get(Node, int(m.group(1))) if m else None
            rel = trash.item_path(s, node) if node is not None else None
            if node is None or rel is None:
                raise _not_an_item(item)
            tree = s.get(Client, node.client_id)
            assert tree is not None, f"node {node.id} has no tree"  # a foreign key
            return paths.join((tree.name, trash.VIEW) + rel)


def _not_an_item(item: str) -> NotFound:
    return NotFound(f"not an item of the trash: {item} (give an ID or ITEM that "
                    f"`strongroom trash list` shows)")
