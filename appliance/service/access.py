"""Who may do what where: the one decision point, an `AccessPolicy` per Session.

The rules are auth.acl's; the policy finds the grants that apply to the
session's principal in a tree and the shared libraries it sees:
- the administrator (CLI) may do everything everywhere;
- a client user: grants to the user or to its whole client, in its client's
  tree only; libraries shared with its client are readable, never writable;
- staff: grants to the user, in any client's tree; every library is readable,
  writable where granted.
Denied means the path is visible but the right is missing; a path the principal
cannot see at all answers NotFound, so nothing outside a view can be probed.

What the policy read (client rows, grants, library names) it remembers briefly,
shared by the principal's sessions in this process (App.access_memo); nothing
outside this module reads or writes those caches.
"""
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.hotpath import ClientRow, HotPath
from strongroom.appliance.db.models import AclGrant, Client, LibraryMember
from strongroom.appliance.errors import Denied, Hidden, NotFound
from strongroom.appliance.service.entry import NodeFacts
from strongroom.appliance.service.principal import Principal
from strongroom.auth import acl

if TYPE_CHECKING:
    from strongroom.appliance.app import App

# A transaction the access decisions read in: an ORM session (most operations) or a
# hot-path one (stat, uploads). Deciding runs Core SELECTs both can execute; what takes
# a HotPath alone gets an ORM session's connection (`hot`).
Db: TypeAlias = "OrmSession | HotPath"
Grants: TypeAlias = tuple[acl.Grant, ...]
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

RIGHT_OF = {"list": acl.LIST, "read": "r", "write": "w", "delete": "d", "manage": "m"}
LIBRARIES_TTL = 5.0    # seconds a long-lived session trusts its list of libraries
# Seconds a principal's sessions trust a client row and the principal's grants without
# reading them again, unless this process changed access meanwhile (App.access_changed):
# a change made by the CLI, another process, reaches the daemon within it.
ACCESS_TTL = 2.0
_ALL = (acl.Grant((), acl.RIGHTS),)
# Grants of a staff user, and of a client user (its own and its client's), in one tree.
_BY_USER = (AclGrant.subject_kind == "user") & (AclGrant.subject_id == bindparam("user_id"))
_STAFF_GRANTS = select(AclGrant.path, AclGrant.rights).where(
    AclGrant.client_id == bindparam("tree"), _BY_USER)
_USER_GRANTS = select(AclGrant.path, AclGrant.rights).where(
    AclGrant.client_id == bindparam("tree"),
    _BY_USER | ((AclGrant.subject_kind == "client")
                & (AclGrant.subject_id == bindparam("client_id"))))
_READ = (acl.Grant((), "r"),)


@dataclass(frozen=True)
class ClientInfo:
    """What an operation needs of a client row; a snapshot, never written back.
    Usage changes with every upload, so it is not part of it: repo.used_bytes
    reads it when a quota needs it, and repo.add_usage changes it in SQL."""
    id: int
    name: str
    quota_bytes: int | None
    wrapped_key: bytes
    kind: str = "client"


def hot(db: Db) -> HotPath:
    """`db` as a HotPath: an ORM session's connection, the same transaction, after
    the flush its own execute would have done first (autoflush)."""
    if isinstance(db, OrmSession):
        db.flush()
        return db.connection()
    return db


class _Memo(Generic[K, V]):
    """Values read from the database, trusted for ACCESS_TTL seconds and only while
    this process has not changed access since (App.access_generation)."""

    # `values` is the App's (untyped) memo dict: key -> (generation, time, value)
    def __init__(self, app: "App", values: dict[Any, Any]):
        self._app = app
        self._values: dict[K, tuple[int, float, V]] = values

    def get(self, key: K) -> V | None:
        hit = self._values.get(key)
        if hit is None:
            return None
        generation, at, value = hit
        if generation == self._app.access_generation and time.monotonic() - at < ACCESS_TTL:
            return value
        return None

    def fetch(self, key: K, read: Callable[[], V | None]) -> V | None:
        """The remembered value of `key`, or `read()` (remembered unless None)."""
        value = self.get(key)
        if value is None:
            # stamped before reading: a change while it is read makes it stale at once
            stamp = self._app.access_generation, time.monotonic()
            value = read()
            if value is not None:
                self._values[key] = (*stamp, value)
        return value


class AccessPolicy:
    """The access decisions of one principal: which trees it sees, and whether it
    may act at a path of one of them. `rel` is a path inside a tree (a tuple of
    names); `shown` is how the caller names it, for the error's message."""

    def __init__(self, app: "App", principal: Principal):
        self._app, self._principal = app, principal
        clients, grants = app.access_memo(principal)
        # clients by name (str) and by id (int); grants by client id
        self._clients: _Memo[str | int | None, ClientInfo] = _Memo(app, clients)
        self._grants: _Memo[int, Grants] = _Memo(app, grants)

    # -- trees ------------------------------------------------------------------------

    def libraries(self) -> frozenset[str]:
        """Names of the shared libraries this principal sees (top-level folders).

        Remembered per client for LIBRARIES_TTL seconds in the App (WebDAV makes a
        Session per request): a new library shows up within that time."""
        p = self._principal
        key = "staff" if p.sees_all_clients else p.client_id
        memo = self._app.library_names
        hit: tuple[float, frozenset[str]] | None = memo.get(key)
        if hit is not None and time.monotonic() - hit[0] < LIBRARIES_TTL:
            return hit[1]
        with self._app.db.read() as db:
            q = select(Client.name).where(Client.kind == "library")
            if not p.sees_all_clients:
                member = select(LibraryMember.library_id).where(
                    LibraryMember.client_id == p.client_id)
                q = q.where(or_(Client.shared_with_all.is_(True), Client.id.in_(member)))
            names = frozenset(db.scalars(q))
        memo[key] = (time.monotonic(), names)
        return names

    def tree(self, db: HotPath, name: str) -> ClientInfo | None:
        """The client or library called `name`, or None."""
        return self._clients.fetch(name, lambda: _info(repo.client_info(db, name)))

    def own_tree(self, db: HotPath | None = None) -> ClientInfo:
        """A client user's client, found by id (remembered by id: names are str, so
        the keys never meet), in `db` or a read transaction of its own."""
        client_id = self._principal.client_id
        if client_id is None:  # staff and the administrator have no tree of their own
            raise NotFound("no such file or folder: your client was removed")

        def read() -> ClientInfo | None:
            if db is not None:
                return _info(repo.client_info_by_id(db, client_id))
            with self._app.db.fast_read() as fast:
                return _info(repo.client_info_by_id(fast, client_id))
        client = self._clients.fetch(client_id, read)
        if client is None:
            raise NotFound("no such file or folder: your client was removed")
        return client

    def visible_trees(self, db: OrmSession) -> list[Client]:
        """Client and library rows whose trees appear in a staff or admin root."""
        p = self._principal
        q = select(Client).order_by(Client.name)
        if p.role != "admin":
            granted = select(AclGrant.client_id).where(AclGrant.subject_kind == "user",
                                                       AclGrant.subject_id == p.user_id)
            q = q.where(or_(Client.kind == "library", Client.id.in_(granted)))
        return list(db.scalars(q))

    # -- decisions --------------------------------------------------------------------

    def verdict(self, db: Db, client: ClientInfo, rel: tuple[str, ...], right: str) -> str:
        """acl.decide ('ok', 'denied' or 'hidden') for `right` (a letter, or acl.LIST)
        at a real path of `client`'s tree."""
        return acl.decide(self._grants_in(db, client), rel, right)

    def require(self, db: Db, client: ClientInfo, rel: tuple[str, ...], action: str,
                shown: str) -> None:
        """Raise Denied or Hidden unless the principal may `action` at `rel`."""
        verdict = self.verdict(db, client, rel, RIGHT_OF.get(action, "m"))
        if verdict == "denied":
            raise Denied(f"you may not {action} here: {shown}")
        if verdict == "hidden":
            raise Hidden(f"no such file or folder: {shown}")

    def require_readable_file(self, db: Db, client: ClientInfo, rel: tuple[str, ...],
                              node: NodeFacts | None, shown: str) -> None:
        """A file is seen only with the read right on it: the way through to a
        granted folder shows folders (a file can sit there when a folder was
        replaced by one). Hidden otherwise; folders and None pass."""
        if node is not None and not node.is_dir and self.verdict(db, client, rel, "r") != "ok":
            raise Hidden(f"no such file or folder: {shown}")

    def visible(self, db: Db, client: ClientInfo, rel: tuple[str, ...],
                is_dir: bool = True) -> bool:
        """Whether the principal sees the folder (or file) at `rel` at all."""
        return acl.visible(self._grants_in(db, client), rel, is_dir)

    def reads_all(self, db: Db, client: ClientInfo, rel: tuple[str, ...]) -> bool:
        """Whether the principal may read everything at and below `rel`."""
        return "r" in acl.rights_at(self._grants_in(db, client), rel)

    def _grants_in(self, db: Db, client: ClientInfo) -> Grants:
        """The acl.Grants of this principal in `client`'s tree."""
        grants = self._grants.fetch(client.id, lambda: self._read_grants(db, client))
        assert grants is not None  # _read_grants gives a tuple, never None
        return grants

    def _read_grants(self, db: Db, client: ClientInfo) -> Grants:
        p = self._principal
        if p.role == "admin":
            return _ALL
        if client.kind == "library" and p.role != "staff":
            return _READ
        if p.role != "staff" and client.id != p.client_id:
            return ()
        params: dict[str, int | None] = {"tree": client.id, "user_id": p.user_id}
        if p.role == "staff":
            stmt = _STAFF_GRANTS
        else:
            stmt, params["client_id"] = _USER_GRANTS, p.client_id
        rows = db.execute(stmt, params).all()
        grants = tuple(acl.Grant(split(path), rights) for path, rights in rows)
        return grants + _READ if client.kind == "library" else grants


def _info(row: ClientRow | None) -> ClientInfo | None:
    return None if row is None else ClientInfo(row.id, row.name, row.quota_bytes,
                                               bytes(row.wrapped_key), row.kind)


def split(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)
