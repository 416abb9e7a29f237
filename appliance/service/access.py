"""Who may do what where: the one decision point, mixed into Session.

The rules are auth.acl's; this module finds the grants that apply to the
session's principal in a tree and the shared libraries it sees:
- the administrator (CLI) may do everything everywhere;
- a client user: grants to the user or to its whole client, in its client's
  tree only; libraries shared with its client are readable, never writable;
- staff: grants to the user, in any client's tree; every library is readable,
  writable where granted.
Denied means the path is visible but the right is missing; a path the principal
cannot see at all answers NotFound, so nothing outside a view can be probed.
"""
import time

from sqlalchemy import bindparam, or_, select

from strongroom.appliance.db.models import Client, Grant, LibraryMember
from strongroom.appliance.errors import Denied, Hidden
from strongroom.appliance.service.views import in_view
from strongroom.auth import acl

RIGHT_OF = {"list": acl.LIST, "read": "r", "write": "w", "delete": "d", "manage": "m"}
LIBRARIES_TTL = 5.0    # seconds a long-lived session trusts its list of libraries
# Seconds a principal's sessions trust a client row and the principal's grants without
# reading them again, unless this process changed access meanwhile (App.access_changed):
# a change made by the CLI, another process, reaches the daemon within it.
ACCESS_TTL = 2.0
_ALL = (acl.Grant((), acl.RIGHTS),)
# Grants of a staff user, and of a client user (its own and its client's), in one tree.
_BY_USER = (Grant.subject_kind == "user") & (Grant.subject_id == bindparam("user_id"))
_STAFF_GRANTS = select(Grant.path, Grant.rights).where(
    Grant.client_id == bindparam("tree"), _BY_USER)
_USER_GRANTS = select(Grant.path, Grant.rights).where(
    Grant.client_id == bindparam("tree"),
    _BY_USER | ((Grant.subject_kind == "client") & (Grant.subject_id == bindparam("client_id"))))
_READ = (acl.Grant((), "r"),)


class AccessMixin:
    def libraries(self) -> frozenset[str]:
        """Names of the shared libraries this principal sees (top-level folders).

        Remembered per client for LIBRARIES_TTL seconds in the App (WebDAV makes a
        Session per request): a new library shows up within that time."""
        p = self.principal
        key = "staff" if p.sees_all_clients else p.client_id
        memo = self.app.library_names
        hit = memo.get(key)
        if hit is not None and time.monotonic() - hit[0] < LIBRARIES_TTL:
            return hit[1]
        with self.app.db.read() as s:
            q = select(Client.name).where(Client.kind == "library")
            if not p.sees_all_clients:
                member = select(LibraryMember.library_id).where(
                    LibraryMember.client_id == p.client_id)
                q = q.where(or_(Client.shared_with_all.is_(True), Client.id.in_(member)))
            names = frozenset(s.scalars(q))
        memo[key] = (time.monotonic(), names)
        return names

    def access_stamp(self) -> tuple[int, float]:
        """Taken before reading something remembered()."""
        return self.app.access_generation, time.monotonic()

    def remembered(self, cache: dict, key):
        """A value read earlier (None if none), for ACCESS_TTL seconds and only while
        this process has not changed access since."""
        hit = cache.get(key)
        if hit is None:
            return None
        generation, at, value = hit
        if generation == self.app.access_generation and time.monotonic() - at < ACCESS_TTL:
            return value
        return None

    def _grants(self, s, client) -> tuple:
        """The acl.Grants of this principal in `client`'s tree."""
        grants = self.remembered(self._grant_cache, client.id)
        if grants is None:
            stamp = self.access_stamp()
            grants = self._read_grants(s, client)
            self._grant_cache[client.id] = (*stamp, grants)
        return grants

    def _read_grants(self, s, client) -> tuple:
        p = self.principal
        if p.role == "admin":
            grants = _ALL
        elif client.kind == "library" and p.role != "staff":
            grants = _READ
        elif p.role != "staff" and client.id != p.client_id:
            grants = ()
        else:
            params = {"tree": client.id, "user_id": p.user_id}
            if p.role == "staff":
                stmt = _STAFF_GRANTS
            else:
                stmt, params["client_id"] = _USER_GRANTS, p.client_id
            rows = s.execute(stmt, params).all()
            grants = tuple(acl.Grant(split(path), rights) for path, rights in rows)
            if client.kind == "library":
                grants += _READ
        return grants

    def _decide(self, s, client, t, action: str) -> None:
        """Raise Denied or Hidden unless the principal may `action` at `t`."""
        if in_view(t.rel):
            self._view_decide(s, client, t, action)
            return
        verdict = self._grant_verdict(s, client, t.rel, RIGHT_OF.get(action, "m"))
        if verdict == "denied":
            raise Denied(f"you may not {action} here: {self.view_path(t)}")
        if verdict == "hidden":
            raise Hidden(f"no such file or folder: {self.view_path(t)}")

    def _grant_verdict(self, s, client, rel: tuple, right: str) -> str:
        """acl.decide for a real path of `client`'s tree."""
        return acl.decide(self._grants(s, client), rel, right)

    def _may_read_all(self, s, client, rel) -> bool:
        return "r" in acl.rights_at(self._grants(s, client), rel)

    def _visible_real(self, s, client, rel, is_dir: bool = True) -> bool:
        return acl.visible(self._grants(s, client), rel, is_dir)

    def _visible_child(self, s, client, rel, node) -> bool:
        return self._visible_real(s, client, rel + (node.name,), node.is_dir)

    def _hide_unreadable_file(self, s, client, t, node) -> None:
        """A file is seen only with the read right on it: the way through to a
        granted folder shows folders (a file can sit there when a folder was
        replaced by one)."""
        if node is not None and not node.is_dir and \
                self._grant_verdict(s, client, t.rel, "r") != "ok":
            raise Hidden(f"no such file or folder: {self.view_path(t)}")

    def _visible_trees(self, s) -> list:
        """Client and library rows whose trees appear in a staff or admin root."""
        p = self.principal
        q = select(Client).order_by(Client.name)
        if p.role != "admin":
            granted = select(Grant.client_id).where(Grant.subject_kind == "user",
                                                    Grant.subject_id == p.user_id)
            q = q.where(or_(Client.kind == "library", Client.id.in_(granted)))
        return list(s.scalars(q))


def split(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)
