"""wsgidav's lock-storage interface, translated onto the Session's lock operations.

The adapter stores, refreshes and releases locks only through the Session
(lock, refresh_lock, unlock) and reads them only through it (lock_of,
locks_below); the only other thing it may do is purge expired ones.

wsgidav hands us paths as the requesting user sees them, URL-quoted, and keeps
its own conflict rules (exclusive/shared, depth, tokens in If headers); whether a
user may lock at all, how long a lock lives and the audit trail are the Session's,
which works on plain paths: they are unquoted on the way in and quoted on the way
out.
"""
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import quote, unquote

from wsgidav.dav_error import HTTP_FORBIDDEN, DAVError
from wsgidav.lock_man.lock_manager import normalize_lock_root

from strongroom.appliance.errors import NotFound
from strongroom.appliance.webdav.domain import current
from strongroom.appliance.webdav.errors import boundary, logged

if TYPE_CHECKING:
    from strongroom.appliance.service import Session

# A lock as wsgidav keeps it: token, root, owner (XML), timeout, expire, scope, type,
# depth, principal: values of several types, read and written by wsgidav's untyped
# lock manager.
Lock: TypeAlias = dict[str, Any]


def _session() -> "Session":
    session = current.session
    if session is None:
        raise DAVError(HTTP_FORBIDDEN, context_info="locks need an authenticated request")
    return session


@boundary(lambda storage, *args: f"lock {args[0] if args else ''}")
class LockStorage:
    def __init__(self, purge_expired: Callable[[], object]) -> None:
        """`purge_expired()`: removes the expired locks (housekeeping, nobody's action)."""
        self._purge_expired = purge_expired

    def __repr__(self) -> str:
        return "LockStorage(service layer)"

    def open(self) -> None:
        self._purge_expired()

    def close(self) -> None:
        pass

    def cleanup(self) -> None:
        self._purge_expired()

    def clear(self) -> None:
        pass

    def get(self, token: str) -> Lock | None:
        return _quoted(_session().lock_of(token))

    def create(self, path: str, lock: Lock) -> Lock:
        # wsgidav reads token, root and timeout back from the dict it passed in
        _forget()
        stored = _session().lock(_plain(path), lock)
        lock.update(_quoted_one(stored))
        return lock

    def refresh(self, token: str, *, timeout: float | None) -> Lock | None:
        _forget()
        try:
            return _quoted(_session().refresh_lock(token, timeout))
        except NotFound as e:
            logged("LOCK (refresh)", e)
            raise ValueError("no such lock") from None  # wsgidav answers 412

    def delete(self, token: str) -> bool:
        _forget()
        return _session().unlock(token)

    def get_lock_list(self, path: str, *, include_root: bool, include_children: bool,
                      token_only: bool) -> list[str] | list[Lock]:
        root = _plain(path)
        prefix = root.rstrip("/") + "/"
        locks = [lock for lock in _snapshot()
                 if (include_root and lock["root"] == root)
                 or (include_children and lock["root"].startswith(prefix))]
        if token_only:
            return [lock["token"] for lock in locks]
        return [_quoted_one(lock) for lock in locks]


def _plain(path: str) -> str:
    root: str = normalize_lock_root(path)
    return unquote(root)


def _quoted_one(lock: Lock) -> Lock:
    """A lock as wsgidav keeps it: its root as a quoted URL path (get_ref_url())."""
    return dict(lock, root=quote(lock["root"]))


def _quoted(lock: Lock | None) -> Lock | None:
    return None if lock is None else _quoted_one(lock)


def _snapshot() -> list[Lock]:
    """The locks of the requesting user's view, read once per request: wsgidav asks
    for the path and then for every parent folder in turn."""
    snap = current.dav_locks
    if snap is None:
        try:
            snap = current.dav_locks = _session().locks_below("/")
        except NotFound:
            snap = current.dav_locks = []
    return snap


def _forget() -> None:
    current.dav_locks = None
