"""Admin operations on rights. Mixed into Admin; audited.

Grants name a folder by its canonical path '/<client or library>/<folder>'. A
client user (or a whole client) can be granted rights only inside its own
client's tree: a client never sees another client's files, and libraries are
read-only to clients by construction.
"""
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import AclGrant, Client, User
from strongroom.appliance.errors import BadRequest, NotFound
from strongroom.appliance.service import paths
from strongroom.appliance.service.access import split
from strongroom.appliance.service.admin_base import Json
from strongroom.appliance.service.trees import TreesMixin, tree_row
from strongroom.auth import acl


class GrantsMixin(TreesMixin):
    def _tree_path(self, s: OrmSession, path: str) -> tuple[Client, tuple[str, ...]]:
        """(tree row, rel parts) of a canonical path naming an existing folder."""
        parts = paths.clean(path)
        if not parts:
            raise BadRequest("give a path inside a tree: /CLIENT/FOLDER or /LIBRARY/FOLDER")
        tree = tree_row(s, parts[0])
        node = repo.walk(s, tree.id, parts[1:])
        if node is None or not node.is_dir:
            raise NotFound(f"no folder {paths.join(parts)}")
        return tree, parts[1:]

    def _subject(self, s: OrmSession, tree: Client, login: str | None,
                 client: str | None) -> tuple[str, int, str]:
        if login and not client:
            user = self._user(s, login)
            if user.role != "staff" and user.client_id != tree.id:
                raise BadRequest(f"{login} is a user of another client and can only be given "
                                 f"rights in that client's tree")
            return "user", user.id, login
        if not client or login:
            raise BadRequest("give exactly one of --user LOGIN or --client NAME")
        row = repo.client_by_name(s, client)
        if row is None or row.kind != "client":
            raise NotFound(f"no client named {client!r}")
        if row.id != tree.id:
            raise BadRequest(f"client {client} can only be given rights in its own tree")
        return "client", row.id, client

    def grant(self, path: str, *, login: str | None = None, client: str | None = None,
              rights: str) -> Json:
        letters = _rights(rights)
        with self.app.db.write() as s:
            tree, rel = self._tree_path(s, path)
            kind, sid, name = self._subject(s, tree, login, client)
            row = _grant_row(s, tree.id, rel, kind, sid)
            if row is None:
                row = AclGrant(client_id=tree.id, path=paths.join(rel), subject_kind=kind,
                               subject_id=sid, rights=letters)
                s.add(row)
            else:
                row.rights = acl.rights_at([acl.Grant((), row.rights + letters)], ())
            self._audit(s, "acl-grant", f"/{tree.name}{paths.join(rel).rstrip('/')}",
                        f"{kind}={name} rights={row.rights}")
            return _grant_dict(tree.name, row.path, kind, name, row.rights)

    def revoke(self, path: str, *, login: str | None = None, client: str | None = None,
               rights: str | None = None) -> Json:
        """Take `rights` (default: all) of the subject's grant on exactly `path`."""
        with self.app.db.write() as s:
            tree, rel = self._tree_path(s, path)
            kind, sid, name = self._subject(s, tree, login, client)
            row = _grant_row(s, tree.id, rel, kind, sid)
            if row is None:
                raise NotFound(f"{kind} {name} has no grant on {path}")
            left = "".join(r for r in row.rights if rights and r not in _rights(rights))
            if left:
                row.rights = left
            else:
                s.delete(row)
            self._audit(s, "acl-revoke", f"/{tree.name}{paths.join(rel).rstrip('/')}",
                        f"{kind}={name} rights={left or '-'}")
            return _grant_dict(tree.name, row.path, kind, name, left)

    def list_grants(self, path: str | None = None, login: str | None = None,
                    client: str | None = None) -> list[Json]:
        if path is not None:
            self.tree_of(path)
        with self.app.db.read() as s:
            trees = {c.id: c.name for c in repo.clients(s)}
            users = {u.id: u.login for u in s.scalars(select(User))}
            out = []
            for g in s.scalars(select(AclGrant).order_by(AclGrant.client_id, AclGrant.path)):
                name = users.get(g.subject_id) if g.subject_kind == "user" \
                    else trees.get(g.subject_id)
                d = _grant_dict(trees[g.client_id], g.path, g.subject_kind, name, g.rights)
                if _matches(d, path, login, client):
                    out.append(d)
            return out

    def check(self, login: str, action: str, path: str) -> Json:
        """What the service layer decides for `login` doing `action` at full tree path
        `path`, which the user sees as `seen_as` (None: outside the user's view)."""
        if action not in ("list", "read", "write", "delete"):
            raise BadRequest("action is one of list, read, write, delete")
        self.tree_of(path)
        session = self.app.session(self.app.auth.principal_of(login), "cli")
        seen = session.view_of(path)
        verdict = "not found" if seen is None else session.check(action, seen)
        return {"login": login, "action": action, "path": path, "seen_as": seen,
                "verdict": verdict}


def grants_in(s: OrmSession, tree: Client) -> list[Json]:
    """The grants in one client's or library's tree, to its users, its whole
    client or staff."""
    users = {u.id: u.login for u in s.scalars(select(User))}
    rows = s.scalars(select(AclGrant).where(AclGrant.client_id == tree.id)
                     .order_by(AclGrant.path))
    return [_grant_dict(tree.name, g.path, g.subject_kind,
                        users.get(g.subject_id) if g.subject_kind == "user" else tree.name,
                        g.rights) for g in rows]


def move_grants(s: OrmSession, tree_id: int, old: tuple[str, ...],
                new: tuple[str, ...]) -> None:
    """Grants on `old` or below it follow a folder renamed to `new`."""
    for g in s.scalars(select(AclGrant).where(AclGrant.client_id == tree_id)):
        rel = split(g.path)
        if rel[:len(old)] == old:
            g.path = paths.join(new + rel[len(old):])


def drop_grants(s: OrmSession, tree_id: int, folder: tuple[str, ...]) -> list[str]:
    """Remove the grants on a deleted (or replaced) folder and below it, so that a
    new folder made at the same path is not granted to anyone by accident; return
    them as 'path kind=id rights' for the audit trail."""
    dropped = []
    for g in s.scalars(select(AclGrant).where(AclGrant.client_id == tree_id)):
        if split(g.path)[:len(folder)] == folder:
            dropped.append(f"{g.path} {g.subject_kind}={g.subject_id} rights={g.rights}")
            s.delete(g)
    return dropped


def _grant_row(s: OrmSession, tree_id: int, rel: tuple[str, ...], kind: str,
               sid: int) -> AclGrant | None:
    return s.scalar(select(AclGrant).where(
        AclGrant.client_id == tree_id, AclGrant.path == paths.join(rel),
        AclGrant.subject_kind == kind, AclGrant.subject_id == sid))


def _rights(text: str) -> str:
    try:
        return acl.parse_rights(text)
    except ValueError as e:
        raise BadRequest(str(e)) from None


def _grant_dict(tree: str, rel_path: str, kind: str, name: str | None, rights: str) -> Json:
    full = f"/{tree}{rel_path}".rstrip("/") if rel_path != "/" else f"/{tree}"
    return {"path": full, kind: name, "rights": acl.describe(rights)}


def _matches(d: Json, path: str | None, login: str | None, client: str | None) -> bool:
    if path and d["path"] != "/" + "/".join(paths.clean(path)):
        return False
    return (not login or d.get("user") == login) and (not client or d.get("client") == client)
