"""Admin operations on WebDAV locks, mixed into Admin: list them and clear them
(by token, at or below a path, or of one user); every clearing is audited. A lock
a client forgot, or one left by a removed device, no longer needs to time out."""
from strongroom.appliance.errors import BadRequest, NotFound
from strongroom.appliance.service import paths
from strongroom.appliance.service.admin_base import AdminBase, Json
from strongroom.appliance.service.locks import LockDict


class AdminLocksMixin(AdminBase):
    def list_locks(self, path: str | None = None, login: str | None = None) -> list[Json]:
        root = paths.join(paths.clean(path)) if path else None
        with self.app.db.read() as s:
            if login:
                self._user(s, login)
            return [_lock_dict(lock) for lock in
                    self.app.locks.listed(s, principal=login, root=root)]

    def clear_locks(self, *, token: str | None = None, path: str | None = None,
                    login: str | None = None) -> Json:
        """Remove locks: the one `token`, every lock at or below `path`, or every lock
        of `login` (exactly one of them)."""
        if sum(x is not None for x in (token, path, login)) != 1:
            raise BadRequest("give exactly one of a PATH, --token TOKEN or --user LOGIN")
        with self.app.db.write() as s:
            if token is not None:
                found = [lock for lock in self.app.locks.listed(s) if lock["token"] == token]
                if not found:
                    raise NotFound(f"no lock with token {token}")
            else:
                if login:
                    self._user(s, login)
                if path is not None and not paths.clean(path):
                    raise BadRequest("give a path inside a tree (/CLIENT/...), or --user")
                root = paths.join(paths.clean(path)) if path else None
                found = self.app.locks.listed(s, principal=login, root=root)
            removed = self.app.locks.drop(s, [lock["token"] for lock in found])
            for lock in found:
                self._audit(s, "lock-clear", lock["root"],
                            f"owner={lock['principal']} token={lock['token']}")
        return {"cleared": removed, "locks": [_lock_dict(lock) for lock in found]}


def _lock_dict(lock: LockDict) -> Json:
    return {"path": lock["root"], "user": lock["principal"], "token": lock["token"],
            "scope": lock["scope"], "depth": lock["depth"], "expires_at": lock["expire"],
            "owner": lock["owner"]}
