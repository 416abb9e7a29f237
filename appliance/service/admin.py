"""Provisioning, used by the CLI: the Admin object, made of one mixin per subject
(clients, users, libraries, credentials, grants, locks, the doctor, notifications,
removing a client).
Every change is audited through Admin._audit."""
from strongroom.appliance.errors import BadRequest, Conflict, NotFound
from strongroom.appliance.service import audit, paths, renames
from strongroom.appliance.service.admin_base import Json
from strongroom.appliance.service.admin_clients import ClientsMixin
from strongroom.appliance.service.admin_doctor import DoctorMixin
from strongroom.appliance.service.admin_libraries import LibrariesMixin
from strongroom.appliance.service.admin_notify import NotifyMixin
from strongroom.appliance.service.admin_remove import RemoveMixin
from strongroom.appliance.service.admin_users import UsersMixin
from strongroom.appliance.service.admin_versions import PinsMixin
from strongroom.appliance.service.admin_verify import VerifyMixin
from strongroom.appliance.service.maintenance import MaintenanceMixin
from strongroom.appliance.service.adminlocks import AdminLocksMixin
from strongroom.appliance.service.credentials import CredentialsMixin
from strongroom.appliance.service.export import ExportMixin
from strongroom.appliance.service.grants import GrantsMixin
from strongroom.appliance.service.principal import Principal
from strongroom.appliance.service.service import Session
from strongroom.appliance.service.trees import TreesMixin


class Admin(UsersMixin, LibrariesMixin, ClientsMixin, CredentialsMixin, GrantsMixin,
            AdminLocksMixin, TreesMixin, MaintenanceMixin, DoctorMixin, NotifyMixin,
            RemoveMixin, VerifyMixin, ExportMixin, PinsMixin):
    """The mixins stand on AdminBase (the App, the actor, _audit, _user, _client_row);
    LibrariesMixin extends ClientsMixin (a library is made as a client is), GrantsMixin
    extends TreesMixin."""

    def audit_events(self, *, actor: str | None = None, client: str | None = None,
                     action: str | None = None, outcome_not_ok: bool = False,
                     since: float | None = None, limit: int | None = None) -> list[Json]:
        """See appliance.service.audit.events; a login or action that can never match
        is refused (audit.check_filters); a client or user filter also finds the
        events recorded under the names it had before a rename (session.renames)."""
        with self.app.db.read() as s:
            audit.check_filters(s, actor=actor, action=action)
            return audit.events(
                s, actor=None if actor is None else renames.aliases(s, "user", actor),
                client=None if client is None else renames.aliases(s, "client", client),
                action=action, outcome_not_ok=outcome_not_ok, since=since, limit=limit)

    def verify_audit(self) -> audit.Verdict:
        """Check the chain (appliance.service.audit), after anchoring what this process
        itself added to it."""
        self.app.audit.anchor(self.app.db)
        with self.app.db.read() as s:
            return self.app.audit.verify(s)

    def add_folder(self, path: str, *, parents: bool = False) -> Json:
        """Make folder `path` ('/CLIENT/...' or '/LIBRARY/...') through the service
        layer, as the administrator: audited there (action mkdir). With `parents`,
        also the folders on the way, and no error if it exists already."""
        parts = paths.clean(path)
        if len(parts) < 2:
            raise BadRequest("give a folder inside a tree: /CLIENT/FOLDER or /LIBRARY/FOLDER")
        session = self.app.session(Principal(login=self.actor, role="admin"), self.protocol)
        made = []
        for depth in range(2 if parents else len(parts), len(parts) + 1):
            folder = paths.join(parts[:depth])
            if parents and _is_folder(session, folder):
                continue
            session.mkdir(folder)
            made.append(folder)
        return {"path": paths.join(parts), "created": made}


def _is_folder(session: Session, path: str) -> bool:
    """Whether `path` is a folder; a file there is a Conflict."""
    try:
        entry = session.stat(path)
    except NotFound:
        return False
    if not entry.is_dir:
        raise Conflict(f"not a folder: {path}")
    return True
