"""Dead properties (arbitrary name/value metadata a WebDAV client stores on a node).

They hang on the node, not the path, so renames carry them along for free.
Mixed into Session: the same path confinement and permission decisions apply.
"""
from sqlalchemy import delete, select

from strongroom.appliance.db.models import DeadProperty
from strongroom.appliance.service import history, trash


class PropertiesMixin:
    def dead_properties(self, path) -> dict[str, str]:
        t = self.target(path)
        with self._op("props", t, write=False, audited=False, right="list") as (s, client):
            if client is None or t.rel[:1] == (history.VIEW,):
                return {}
            if t.rel[:1] == (trash.VIEW,):   # a deleted node keeps its properties
                node = self._view_found(s, client, t).node
            else:
                node = self._node(s, client, t)
                self._hide_unreadable_file(s, client, t, node)
            rows = s.scalars(select(DeadProperty).where(DeadProperty.node_id == node.id))
            return {p.name: p.value for p in rows}

    def set_dead_property(self, path, name: str, value: str | None) -> None:
        """Set `name` to `value`, or remove it when value is None."""
        t = self.target(path)
        with self._op("proppatch", t, write=True, right="write") as (s, client):
            node = self._node(s, client, t)
            s.execute(delete(DeadProperty).where(DeadProperty.node_id == node.id,
                                                 DeadProperty.name == name))
            if value is not None:
                s.add(DeadProperty(node_id=node.id, name=name, value=value))

    def copy_dead_properties(self, src, dst) -> None:
        for name, value in self.dead_properties(src).items():
            self.set_dead_property(dst, name, value)
