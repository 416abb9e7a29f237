"""WebDAV locks as Session operations, mixed into Session: taking a lock needs the
write right on its root, refreshing one needs to own it, releasing one needs to own
it or the delete right where it is (the lock of a file one just deleted or moved
away); each is audited. Locks are stored by canonical path (appliance.service.locks)
and handed out in the caller's view; a lock outside the caller's view is never shown.
"""
import secrets

from strongroom.appliance.db.models import Client, User
from strongroom.appliance.errors import Denied, Hidden, NotFound
from strongroom.appliance.service import paths


def new_token() -> str:
    return f"opaquelocktoken:{secrets.token_hex(16)}"


class LockingMixin:
    def lock(self, path, lock: dict) -> dict:
        """Store `lock` (wsgidav's fields; its timeout is capped) on `path`; return the
        stored lock in this caller's view."""
        t = self.target(path)
        with self._op("lock", t, write=True, right="write") as (s, client):
            root = self._fresh_root(s, client, t)
            stored = self.app.locks.create(s, root, lock, new_token())
        return dict(stored, root=self.view_path(t))

    def _fresh_root(self, s, client, t: paths.Target) -> str:
        """The canonical path to lock, decided on what the database says now rather than
        on what this session remembers for a few seconds: a lock outlives its request,
        so one taken by an account removed or disabled a moment ago, or filed under the
        old name of a client renamed a moment ago, would stay (and, under the old name,
        bind whoever takes that name next)."""
        p = self.principal
        if p.user_id is not None:
            user = s.get(User, p.user_id)
            owner = None if user is None or user.client_id is None else \
                s.get(Client, user.client_id)
            if user is None or user.disabled or user.login != p.login or \
                    (owner is not None and owner.disabled):
                raise Denied("this account was changed or removed: log in again")
        if client is None:
            return t.canonical
        return paths.Target(s.get(Client, client.id).name, t.rel).canonical

    def refresh_lock(self, token: str, timeout) -> dict:
        """A lock of this principal with a new timeout (capped); NotFound otherwise."""
        lock = self._own_lock(token)
        t = self.target(self.view_of(lock["root"]))
        with self._op("lock-refresh", t, write=True, right="list") as (s, client):
            refreshed = self.app.locks.refresh(s, token, timeout)
        if refreshed is None:
            raise NotFound("the lock expired")
        return self._in_view(refreshed)

    def unlock(self, token: str) -> bool:
        """Release a lock; False if there is none by that token."""
        lock = self.app.locks.get(token)
        view = None if lock is None else self.view_of(lock["root"])
        if view is None:
            return False
        t = self.target(view)
        if lock["principal"] != self.principal.login and not self._may("delete", t):
            raise Denied(f"the lock on {view} belongs to someone else")
        with self._op("unlock", t, write=True, right="list") as (s, client):
            return self.app.locks.delete(s, token)

    def lock_of(self, token: str) -> dict | None:
        lock = self.app.locks.get(token)
        return None if lock is None else self._in_view(lock)

    def locks_below(self, path) -> list[dict]:
        """The live locks at or below `path`, in this caller's view (one query)."""
        found = self.app.locks.under(self.target(path).canonical)
        return [lock for lock in map(self._in_view, found) if lock is not None]

    def _own_lock(self, token: str) -> dict:
        lock = self.app.locks.get(token)
        if lock is None or lock["principal"] != self.principal.login \
                or self.view_of(lock["root"]) is None:
            raise NotFound("no such lock")
        return lock

    def _in_view(self, lock: dict) -> dict | None:
        view = self.view_of(lock["root"])
        return None if view is None else dict(lock, root=view)

    def _may(self, action: str, t: paths.Target) -> bool:
        """The access decision alone: whether `action` would be allowed at `t`."""
        try:
            with self.app.db.read() as s:
                self._client(s, t, action)
        except (Denied, Hidden, NotFound):
            return False
        return True
