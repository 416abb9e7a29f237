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
from urllib.parse import quote, unquote

from wsgidav.dav_error import HTTP_FORBIDDEN, DAVError
from wsgidav.lock_man.lock_manager import normalize_lock_root

from strongroom.appliance.errors import NotFound
from strongroom.appliance.webdav.domain import current
from strongroom.appliance.webdav.errors import boundary, logged


def _session():
    session = getattr(current, "session", None)
    if session is None:
        raise DAVError(HTTP_FORBIDDEN, context_info="locks need an authenticated request")
    return session


@boundary(lambda storage, *args: f"lock {args[0] if args else ''}")
class LockStorage:
    def __init__(self, purge_expired):
        """`purge_expired()`: removes the expired locks (housekeeping, nobody's action)."""
        self._purge_expired = purge_expired

    def __repr__(self):
        return "LockStorage(service layer)"

    def open(self):
        self._purge_expired()

    def close(self):
        pass

    def cleanup(self):
        self._purge_expired()

    def clear(self):
        pass

    def get(self, token):
        return _quoted(_session().lock_of(token))

    def create(self, path, lock):
        # wsgidav reads token, root and timeout back from the dict it passed in
        _forget()
        stored = _session().lock(_plain(path), lock)
        lock.update(_quoted(stored))
        return lock

    def refresh(self, token, *, timeout):
        _forget()
        try:
            return _quoted(_session().refresh_lock(token, timeout))
        except NotFound as e:
            logged("LOCK (refresh)", e)
            raise ValueError("no such lock") from None  # wsgidav answers 412

    def delete(self, token):
        _forget()
        return _session().unlock(token)

    def get_lock_list(self, path, *, include_root, include_children, token_only):
        root = _plain(path)
        prefix = root.rstrip("/") + "/"
        locks = [lock for lock in _snapshot()
                 if (include_root and lock["root"] == root)
                 or (include_children and lock["root"].startswith(prefix))]
        return [lock["token"] for lock in locks] if token_only else list(map(_quoted, locks))


def _plain(path) -> str:
    return unquote(normalize_lock_root(path))


def _quoted(lock: dict | None) -> dict | None:
    """A lock as wsgidav keeps it: its root as a quoted URL path (get_ref_url())."""
    return None if lock is None else dict(lock, root=quote(lock["root"]))


def _snapshot() -> list[dict]:
    """The locks of the requesting user's view, read once per request: wsgidav asks
    for the path and then for every parent folder in turn."""
    snap = getattr(current, "dav_locks", None)
    if snap is None:
        try:
            snap = current.dav_locks = _session().locks_below("/")
        except NotFound:
            snap = current.dav_locks = []
    return snap


def _forget() -> None:
    current.dav_locks = None
