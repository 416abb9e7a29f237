"""Admin operations on clients: add, change (quota, display name, disabled), rename,
show, list. Mixed into Admin; every change is audited.

Clients and libraries are rows of one table, so they share one namespace, and
names are unique without regard to case: 'Acme' is refused next to 'acme'.
Grants, library memberships and users refer to a client by id, so they follow a
rename as they are; WebDAV locks (kept by path) are moved, and `audit list
--client NEW` also finds the events recorded under the old name
(appliance.service.renames).
"""
import enum
import re

from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import AclGrant, Client, LibraryMember, Node, User
from strongroom.appliance.errors import BadRequest, Conflict
from strongroom.appliance.service import history_usage, keys_store, renames
from strongroom.appliance.service import retention_rules as rr
from strongroom.appliance.service.admin_base import AdminBase, Json
from strongroom.appliance.service.credentials import end_sessions
from strongroom.appliance.service.grants import grants_in

DEFAULT_CLIENT_RIGHTS = "rwd"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_DISPLAY_NAME = 200


class Keep(enum.Enum):
    """set_client's quota=KEEP: leave the quota as it is (None removes it)."""
    KEEP = enum.auto()


KEEP = Keep.KEEP


class ClientsMixin(AdminBase):
    def add_client(self, name: str, quota: int | None = None, *, kind: str = "client") -> Json:
        check_name(name, kind)
        _check_quota(quota)
        with self.app.db.write() as s:
            _name_free(s, name)
            client = Client(name=name, quota_bytes=quota, used_bytes=0, kind=kind,
                            **keys_store.new_client_key(s.connection(), self.app.keyring))
            s.add(client)
            s.flush()
            s.add(Node(client_id=client.id, parent_id=None, name="", is_dir=True))
            if kind == "client":
                # its users may read, write and delete in the whole tree until the admin
                # replaces this grant with finer ones ('strongroom acl')
                s.add(AclGrant(client_id=client.id, path="/", subject_kind="client",
                               subject_id=client.id, rights=DEFAULT_CLIENT_RIGHTS))
            self._audit(s, f"{kind}-add", f"/{name}", f"quota={quota}")
            return client_dict(client)

    def list_clients(self) -> list[Json]:
        """Every client with its usage: used_bytes (current files), history_bytes
        (older versions of live files), trash_bytes (all versions of deleted items)."""
        with self.app.db.read() as s:
            history, trashed = history_usage.history_bytes(s), history_usage.trash_bytes(s)
            return [dict(client_dict(c), history_bytes=history.get(c.id, 0),
                         trash_bytes=trashed.get(c.id, 0)) for c in repo.clients(s, "client")]

    def set_client(self, name: str, *, quota: int | None | Keep = KEEP,
                   display_name: str | None = None, disabled: bool | None = None,
                   retention: str | None = None) -> Json:
        """Change what is given: `quota` (None: no quota), `display_name` ('' clears
        it), `disabled` (its users cannot log in; their drive sessions and WebDAV
        locks end, live SFTP sessions within seconds), `retention` (a spec for
        retention_rules.parse_overrides: the options given become the client's own,
        'OPTION=default' drops one, 'default' all). A bad value changes nothing."""
        changes = []
        with self.app.db.write() as s:
            client = self._client_row(s, name)
            if retention is not None:
                client.retention = _retention_overrides(client.retention, retention)
                changes.append(f"retention={client.retention or 'default'}")
            if not isinstance(quota, Keep):
                _check_quota(quota)
                client.quota_bytes = quota
                changes.append(f"quota={quota}")
            if display_name is not None:
                client.display_name = check_display_name(display_name)
                changes.append(f"display_name={client.display_name}")
            if disabled is not None:
                client.disabled = disabled
                if disabled:
                    end_sessions(s, self.app.locks, _user_rows(s, client.id))
                changes.append(f"disabled={disabled}")
            if not changes:
                raise BadRequest("nothing to change: give --quota, --display-name, "
                                 "--disable, --enable or --retention")
            self._audit(s, "client-set", f"/{name}", " ".join(changes))
            return client_dict(client)

    def rename_client(self, old: str, new: str) -> Json:
        """Rename client `old` to `new`; everything that refers to it follows (see
        the module docstring). Open sessions see the new name within seconds."""
        check_name(new, "client")
        with self.app.db.write() as s:
            client = self._client_row(s, old)
            if new == old:
                raise BadRequest(f"client {old} is already called {new}")
            _name_free(s, new, but=client)
            client.name = new
            locks = self.app.locks.rename_tree(s, old, new)
            self._audit(s, "client-rename", f"/{new}", f"{renames.detail(old, new)} locks={locks}")
            return client_dict(client)

    def show_client(self, name: str) -> Json:
        """The client with its users, the grants in its tree and the libraries it sees."""
        with self.app.db.read() as s:
            client = self._client_row(s, name)
            users = _user_rows(s, client.id)
            libraries = s.scalars(select(Client.name).where(Client.kind == "library").where(
                Client.shared_with_all.is_(True) | Client.id.in_(
                    select(LibraryMember.library_id).where(LibraryMember.client_id == client.id)))
                .order_by(Client.name))
            ids = [client.id]
            return dict(client_dict(client), users=[_user_summary(u) for u in users],
                        grants=grants_in(s, client), libraries=list(libraries),
                        history_bytes=history_usage.history_bytes(s, ids).get(client.id, 0),
                        trash_bytes=history_usage.trash_bytes(s, ids).get(client.id, 0),
                        retention=self._retention(client))

    def _retention(self, client: Client) -> Json:
        """The client's effective retention, each option saying whether it is its own."""
        try:
            return rr.effective(self.app.config, client.retention)
        except ValueError as e:     # written by hand into the database, say
            raise BadRequest(f"client {client.name}: {e}; 'client set {client.name} "
                             f"--retention default' resets it") from None


def _retention_overrides(stored: str | None, spec: str) -> str | None:
    """The stored overrides after applying `spec` to `stored`."""
    try:
        given = rr.parse_overrides(spec)
        if all(given.get(name) is rr.DEFAULT for name in rr.OVERRIDABLE):
            return None             # also when what is stored cannot be read
        old = rr.read_overrides(stored)
    except ValueError as e:
        raise BadRequest(str(e)) from None
    merged = {**old, **given}
    return rr.stored_overrides({n: v for n, v in merged.items() if v is not rr.DEFAULT})


def check_name(name: str, what: str) -> None:
    if not NAME.match(name):
        raise BadRequest(f"{what} names are 1-64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")


def check_display_name(text: str) -> str | None:
    """A display name ('' for none): printable, at most MAX_DISPLAY_NAME characters."""
    text = text.strip()
    if len(text) > MAX_DISPLAY_NAME or not text.isprintable():
        raise BadRequest(f"a display name is at most {MAX_DISPLAY_NAME} printable characters")
    return text or None


def _name_free(s: OrmSession, name: str, but: Client | None = None) -> None:
    """Refuse `name` if a client or library (other than `but`) has it, in any case."""
    existing = repo.client_named_alike(s, name)
    if existing is None or existing is but:
        return
    if existing.name == name:
        raise Conflict(f"a {existing.kind} named {name!r} already exists")
    raise Conflict(f"{name!r} is taken: a {existing.kind} named {existing.name!r} exists "
                   f"(names are unique without regard to case)")


def _check_quota(quota: int | None) -> None:
    if quota is not None and quota <= 0:
        raise BadRequest("a quota is above zero; for no quota give 'none'")


def _user_rows(s: OrmSession, client_id: int) -> list[User]:
    return list(s.scalars(select(User).where(User.client_id == client_id).order_by(User.login)))


def _user_summary(u: User) -> Json:
    return {"login": u.login, "email": u.email, "display_name": u.display_name,
            "totp": u.totp_secret is not None, "disabled": u.disabled}


def client_dict(c: Client) -> Json:
    return {"name": c.name, "display_name": c.display_name, "quota_bytes": c.quota_bytes,
            "used_bytes": c.used_bytes, "disabled": bool(c.disabled)}
