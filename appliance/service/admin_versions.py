"""Pinning a version: a pinned version is never removed by retention, trash expiry or
the history budget (appliance.service.retention_rules, the maintenance runner). Mixed
into Admin; audited as version-pin and version-unpin."""
from strongroom.appliance.db.models import Version
from strongroom.appliance.errors import BadRequest, NotFound
from strongroom.appliance.service import paths
from strongroom.appliance.service.admin_base import AdminBase, Json
from strongroom.appliance.service.principal import Principal
from strongroom.appliance.service.trees import tree_row


class PinsMixin(AdminBase):
    def pin_version(self, path: str, version_id: int, *, pinned: bool = True) -> Json:
        """Pin (or with pinned=False unpin) version `version_id` of the file at full tree
        path `path` ('/CLIENT/...', '/LIBRARY/...', also a file in '@trash'). An unknown
        path, a folder or an id that is not a version of that file: NotFound, Conflict;
        nothing changes. Returns {"path", "version", "pinned", "changed"}."""
        parts = paths.clean(path)
        if not parts:
            raise BadRequest(f"give a file's full tree path, /CLIENT/..., not {path!r}")
        with self.app.db.read() as s:
            tree_row(s, parts[0])
        path = paths.join(parts)
        session = self.app.session(Principal(login=self.actor, role="admin"), self.protocol)
        if not any(v.id == version_id for v in session.versions(path)):
            raise NotFound(f"no version {version_id} of {path} "
                           f"('strongroom versions list {path}' shows its versions)")
        with self.app.db.write() as s:
            row = s.get(Version, version_id)
            if row is None:       # removed since it was listed
                raise NotFound(f"no version {version_id} of {path}")
            changed = row.pinned != pinned
            row.pinned = pinned
            self._audit(s, "version-pin" if pinned else "version-unpin", path,
                        f"version {version_id}" + ("" if changed else " (already so)"))
        return {"path": path, "version": version_id, "pinned": pinned, "changed": changed}
