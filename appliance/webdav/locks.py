"""wsgidav's lock-storage interface over the database-backed LockStore.

wsgidav hands us paths as the requesting user sees them; they are stored in
canonical form ('/<client>/...') and given back in the user's view, so one
client's users never see, or collide with, another client's locks.
"""
from wsgidav.lock_man.lock_manager import generate_lock_token, normalize_lock_root

from appliance.webdav.domain import current


def _session():
    session = getattr(current, "session", None)
    if session is None:
        raise RuntimeError("lock storage used outside an authenticated request")
    return session


class LockStorage:
    def __init__(self, store):
        self.store = store

    def __repr__(self):
        return "LockStorage(database)"

    def open(self):
        self.store.purge_expired()

    def close(self):
        pass

    def cleanup(self):
        self.store.purge_expired()

    def clear(self):
        pass

    def _canonical(self, path):
        return _session().target(normalize_lock_root(path)).canonical

    def _to_view(self, lock):
        if lock is None:
            return None
        view = _session().view_of(lock["root"])
        return None if view is None else dict(lock, root=view)

    def get(self, token):
        return self._to_view(self.store.get(token))

    def create(self, path, lock):
        # wsgidav reads token, root and timeout back from the dict it passed in
        self._forget()
        stored = self.store.create(self._canonical(path), lock, generate_lock_token())
        lock.update(stored, root=normalize_lock_root(path))
        return lock

    def refresh(self, token, *, timeout):
        self._forget()
        lock = self._to_view(self.store.refresh(token, timeout))
        if lock is None:
            raise ValueError("no such lock")
        return lock

    def delete(self, token):
        self._forget()
        return self.store.delete(token)

    def get_lock_list(self, path, *, include_root, include_children, token_only):
        root = self._canonical(path)
        prefix = root.rstrip("/") + "/"
        locks = [self._to_view(lock) for lock in self._snapshot()
                 if (include_root and lock["root"] == root)
                 or (include_children and lock["root"].startswith(prefix))]
        locks = [lock for lock in locks if lock is not None]
        return [lock["token"] for lock in locks] if token_only else locks

    def _snapshot(self) -> list[dict]:
        """The locks of the requesting user's view, read once per request: wsgidav
        asks for the path and then for every parent folder in turn."""
        session = _session()
        snap = getattr(session, "dav_locks", None)
        if snap is None:
            snap = session.dav_locks = self.store.under(session.target("/").canonical)
        return snap

    def _forget(self):
        _session().dav_locks = None
