"""Provisioning, used by the CLI: the Admin object, made of one mixin per subject
(clients, users, libraries, credentials, grants, locks, the doctor). Every change is audited
through Admin._audit."""
from strongroom.appliance.db import repo
from strongroom.appliance.db.models import Client, User
from strongroom.appliance.errors import BadRequest, Conflict, NotFound
from strongroom.appliance.service import audit, paths, renames
from strongroom.appliance.service.admin_clients import ClientsMixin
from strongroom.appliance.service.admin_doctor import DoctorMixin
from strongroom.appliance.service.admin_libraries import LibrariesMixin
from strongroom.appliance.service.admin_users import UsersMixin
from strongroom.appliance.service.adminlocks import AdminLocksMixin
from strongroom.appliance.service.credentials import CredentialsMixin
from strongroom.appliance.service.grants import GrantsMixin
from strongroom.appliance.service.principal import Principal
from strongroom.appliance.service.trees import TreesMixin


class Admin(ClientsMixin, UsersMixin, LibrariesMixin, CredentialsMixin, GrantsMixin,
            AdminLocksMixin, TreesMixin, DoctorMixin):
    def __init__(self, app, actor: str = "admin", protocol: str = "cli"):
        self.app, self.actor, self.protocol = app, actor, protocol

    def _audit(self, s, action, path, detail=None):
        """Every admin change is audited here, and may change access: sessions of
        this process drop what they remember (another process's within ACCESS_TTL)."""
        self.app.access_changed(s)
        self.app.audit.append(s, actor=self.actor, protocol=self.protocol, address=None,
                     action=action, path=path, detail=detail)

    def audit_events(self, **filters) -> list[dict]:
        """See appliance.service.audit.events; a login or action that can never match
        is refused (audit.check_filters); a client or user filter also finds the
        events recorded under the names it had before a rename (session.renames)."""
        with self.app.db.read() as s:
            audit.check_filters(s, actor=filters.get("actor"), action=filters.get("action"))
            for key, kind in (("client", "client"), ("actor", "user")):
                if filters.get(key) is not None:
                    filters[key] = renames.aliases(s, kind, filters[key])
            return audit.events(s, **filters)

    def verify_audit(self) -> audit.Verdict:
        """Check the chain (appliance.service.audit), after anchoring what this process
        itself added to it."""
        self.app.audit.anchor(self.app.db)
        with self.app.db.read() as s:
            return self.app.audit.verify(s)

    def add_folder(self, path: str, *, parents: bool = False) -> dict:
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

    def _user(self, s, login: str) -> User:
        user = repo.user_by_login(s, login)
        if user is None:
            alike = repo.user_named_alike(s, login)
            hint = f" (did you mean {alike.login!r}?)" if alike else ""
            raise NotFound(f"no user named {login!r}{hint}")
        return user

    def _client_row(self, s, name: str, kind: str = "client") -> Client:
        row = repo.client_by_name(s, name)
        if row is None or row.kind != kind:
            alike = repo.client_named_alike(s, name)
            hint = f" (did you mean {alike.name!r}?)" if alike and alike.kind == kind else ""
            raise NotFound(f"no {kind} named {name!r}{hint}")
        return row


def _is_folder(session, path: str) -> bool:
    """Whether `path` is a folder; a file there is a Conflict."""
    try:
        entry = session.stat(path)
    except NotFound:
        return False
    if not entry.is_dir:
        raise Conflict(f"not a folder: {path}")
    return True
