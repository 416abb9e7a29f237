"""WebDAV locks as Session operations: taking a lock needs the
write right on its root, refreshing one needs to own it, releasing one needs to own
it or the delete right where it is (the lock of a file one just deleted or moved
away); each is audited. Locks are stored by canonical path (appliance.service.locks)
and handed out in the caller's view; a lock outside the caller's view is never shown.

A lock binds every protocol, not only WebDAV's (issue 18): the Session's writes call
`check_unlocked` in their transaction, which refuses with Locked a write that a live
lock of another login covers. The lock's own login may write: WebDAV asks it for the
lock's token as well (wsgidav, If header), SFTP and the portal have no tokens to send.
Locks follow their file or folder when it is renamed (`follow`) and end when it is
deleted or replaced (`end`).
"""
import secrets
from typing import Any, TypeAlias

from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.models import Client, User
from strongroom.appliance.db.hotpath import HotPath
from strongroom.appliance.errors import Denied, Locked, NotFound
from strongroom.appliance.service import paths
from strongroom.appliance.service.access import ClientInfo
from strongroom.appliance.service.spine import Spine

# A lock as wsgidav's lock manager keeps it (token, root, depth, scope, type, owner,
# principal, timeout, expire): wsgidav is untyped, and its values are of several types.
Lock: TypeAlias = dict[str, Any]


def new_token() -> str:
    return f"opaquelocktoken:{secrets.token_hex(16)}"


def check_unlocked(db: HotPath, spine: Spine, t: paths.Target, *, new: bool = False,
                   tree: bool = False) -> None:
    """Raise Locked if a live lock of another login than `spine`'s covers a write at
    `t`: a lock on `t` itself or a depth-infinity lock on a folder above it; with `new`
    (a name appears in or leaves `t`'s folder) any lock on that folder; with `tree` (all
    that is below `t` is moved or deleted too) a lock below it. As wsgidav decides for
    WebDAV (RFC 4918 7.4), without the tokens. Read in the write's own transaction `db`."""
    if t.client is None:
        return
    path = t.canonical
    for root, depth in spine.app.locks.of_others(db, f"/{t.client}", spine.principal.login):
        if root == path or (tree and root.startswith(path + "/")) or (
                path.startswith(root + "/") and
                (depth == "infinity" or (new and path.rpartition("/")[0] == root))):
            raise Locked(f"locked by another user: {spine.view_path(t)}")


def follow(db: OrmSession, spine: Spine, src: paths.Target, dst: paths.Target, *,
           replaced: bool) -> None:
    """The locks at and below `src` move to `dst`, renamed in transaction `db`; those of
    what was at `dst` end first if it was `replaced` (it went to the trash)."""
    store = spine.app.locks
    if replaced:
        store.end(db, dst.canonical)
    store.follow(db, src.canonical, dst.canonical)


def end(db: OrmSession, spine: Spine, t: paths.Target) -> None:
    """The locks at and below `t` end: it is deleted in transaction `db`."""
    spine.app.locks.end(db, t.canonical)


class SessionLocks:
    """The lock operations of one Session's principal, through its spine, on the
    App's lock store (appliance.service.locks)."""

    def __init__(self, spine: Spine):
        self._spine, self._store = spine, spine.app.locks

    def lock(self, path: paths.RawPath, lock: Lock) -> Lock:
        """See Session.lock."""
        t = self._spine.target(path)
        with self._spine.transaction("lock", t, write=True, right="write") as (db, client):
            root = self._fresh_root(db, client, t)
            stored = self._store.create(db, root, lock, new_token())
        return dict(stored, root=self._spine.view_path(t))

    def _fresh_root(self, db: OrmSession, client: ClientInfo, t: paths.Target) -> str:
        """The canonical path to lock, decided on what the database says now rather than
        on what this session remembers for a few seconds: a lock outlives its request,
        so one taken by an account removed or disabled a moment ago, or filed under the
        old name of a client renamed a moment ago, would stay (and, under the old name,
        bind whoever takes that name next)."""
        p = self._spine.principal
        if p.user_id is not None:
            user = db.get(User, p.user_id)
            owner = None if user is None or user.client_id is None else \
                db.get(Client, user.client_id)
            if user is None or user.disabled or user.login != p.login or \
                    (owner is not None and owner.disabled):
                raise Denied("this account was changed or removed: log in again")
        row = db.get(Client, client.id)
        if row is None:
            raise NotFound(f"no such client: {client.name}")
        return paths.Target(row.name, t.rel).canonical

    def refresh(self, token: str, timeout: float | None) -> Lock:
        """See Session.refresh_lock."""
        spine = self._spine
        lock = self._own_lock(token)
        t = spine.target(self._view(lock))
        with spine.transaction("lock-refresh", t, write=True, right="list") as (db, client):
            refreshed = self._store.refresh(db, token, timeout)
        in_view = None if refreshed is None else self._in_view(refreshed)
        if in_view is None:
            raise NotFound("the lock expired")
        return in_view

    def unlock(self, token: str) -> bool:
        """See Session.unlock."""
        spine = self._spine
        lock = self._store.get(token)
        if lock is None:
            return False
        view = spine.view_of(lock["root"])
        if view is None:
            return False
        t = spine.target(view)
        if lock["principal"] != spine.principal.login and not spine.may("delete", t):
            raise Denied(f"the lock on {view} belongs to someone else")
        with spine.transaction("unlock", t, write=True, right="list") as (db, client):
            return self._store.delete(db, token)

    def lock_of(self, token: str) -> Lock | None:
        lock = self._store.get(token)
        return None if lock is None else self._in_view(lock)

    def below(self, path: paths.RawPath) -> list[Lock]:
        """See Session.locks_below."""
        found = self._store.under(self._spine.target(path).canonical)
        return [lock for lock in map(self._in_view, found) if lock is not None]

    def _own_lock(self, token: str) -> Lock:
        lock = self._store.get(token)
        if lock is None or lock["principal"] != self._spine.principal.login \
                or self._spine.view_of(lock["root"]) is None:
            raise NotFound("no such lock")
        return lock

    def _view(self, lock: Lock) -> str:
        """The lock's root in this caller's view; NotFound if it is outside it."""
        view = self._spine.view_of(lock["root"])
        if view is None:
            raise NotFound("no such lock")
        return view

    def _in_view(self, lock: Lock) -> Lock | None:
        view = self._spine.view_of(lock["root"])
        return None if view is None else dict(lock, root=view)
