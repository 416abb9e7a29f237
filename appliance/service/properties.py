"""Dead properties (arbitrary name/value metadata a WebDAV client stores on a node).

They hang on the node, not the path, so renames carry them along for free.
The Session's operations on them go through its spine: the same path
confinement and permission decisions apply.
"""
from sqlalchemy import delete, select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.models import Node

from strongroom.appliance.db.models import DeadProperty
from strongroom.appliance.service import history, paths, trash
from strongroom.appliance.errors import NotFound
from strongroom.appliance.service.access import ClientInfo
from strongroom.appliance.service.spine import Spine


class DeadProperties:
    """The dead properties one Session's principal may see and set."""

    def __init__(self, spine: Spine):
        self._spine = spine

    def get(self, path: paths.RawPath) -> dict[str, str]:
        """See Session.dead_properties."""
        spine = self._spine
        t = spine.target(path)
        if t.is_view_root:
            return {}
        with spine.transaction("props", t, write=False, audited=False,
                               right="list") as (db, client):
            if t.rel[:1] == (history.VIEW,):
                return {}
            node: Node
            if t.rel[:1] == (trash.VIEW,):   # a deleted node keeps its properties
                node = spine.views.found(db, client, t).node
            else:
                node = spine.node(db, client, t)
                spine.policy.require_readable_file(db, client, t.rel, node, spine.view_path(t))
            rows = db.scalars(select(DeadProperty).where(DeadProperty.node_id == node.id))
            return {p.name: p.value for p in rows}

    def of_members(self, folder: paths.RawPath) -> dict[str, dict[str, str]]:
        """See Session.dead_properties_of_members."""
        spine = self._spine
        t = spine.target(folder)
        if t.is_view_root or t.rel[:1] in ((history.VIEW,), (trash.VIEW,)):
            return {}
        with spine.transaction("props", t, write=False, audited=False,
                               right="list") as (db, client):
            node = spine.node(db, client, t)
            if not node.is_dir:
                return {}
            rows = db.execute(select(Node, DeadProperty).join(
                DeadProperty, DeadProperty.node_id == Node.id).where(
                Node.parent_id == node.id, Node.deleted_at.is_(None)))
            found: dict[str, dict[str, str]] = {}
            members: dict[str, Node] = {}
            for member, prop in rows:
                found.setdefault(member.name, {})[prop.name] = prop.value
                members[member.name] = member
            # a file the principal may not read keeps its properties to itself: left
            # out here, so the caller asks for it alone and meets the same refusal
            return {name: props for name, props in found.items()
                    if self._readable(db, client, t.rel + (name,), members[name])}

    def _readable(self, db: OrmSession, client: ClientInfo, rel: tuple[str, ...],
                  node: Node) -> bool:
        try:
            self._spine.policy.require_readable_file(db, client, rel, node, "")
        except NotFound:
            return False
        return True

    def set(self, path: paths.RawPath, name: str, value: str | None) -> None:
        """See Session.set_dead_property."""
        t = self._spine.target(path)
        with self._spine.transaction("proppatch", t, write=True, right="write") as (db, client):
            node = self._spine.node(db, client, t)
            db.execute(delete(DeadProperty).where(DeadProperty.node_id == node.id,
                                                  DeadProperty.name == name))
            if value is not None:
                db.add(DeadProperty(node_id=node.id, name=name, value=value))

    def copy(self, src: paths.RawPath, dst: paths.RawPath) -> None:
        for name, value in self.get(src).items():
            self.set(dst, name, value)
