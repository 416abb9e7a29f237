"""WebDAV lock records in the metadata database, keyed by canonical path
('/<client>/<path>') so that every user's view of a node sees the same locks and
locks survive a restart. The adapter translates view paths to canonical ones."""
import time

from sqlalchemy import bindparam, delete, or_, select

from appliance.db.models import Lock

TIMEOUT_DEFAULT = 604800
TIMEOUT_MAX = 4 * 604800
_FIELDS = ("token", "root", "depth", "scope", "type", "owner", "principal", "timeout", "expire")


def _as_dict(row: Lock) -> dict:
    return {k: getattr(row, k) for k in _FIELDS}


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern (escape character '/') matching strings that start with `prefix`."""
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def _at(include_root: bool, include_children: bool):
    table = Lock.__table__
    conds = []
    if include_root:
        conds.append(table.c.root == bindparam("root"))
    if include_children:
        conds.append(table.c.root.like(bindparam("below"), escape="/"))
    return select(table).where(or_(*conds), table.c.expire >= bindparam("now"))


# Built once, Core rows: wsgidav asks for the locks of every write request.
_COLUMNS = tuple(c.key for c in Lock.__table__.c)
_AT = {(r, c): _at(r, c) for r in (True, False) for c in (True, False) if r or c}


class LockStore:
    def __init__(self, db):
        self.db = db

    def get(self, token: str) -> dict | None:
        with self.db.read() as s:
            row = s.get(Lock, token)
            if row is None or (row.expire >= 0 and row.expire < time.time()):
                return None
            return _as_dict(row)

    def create(self, root: str, lock: dict, token: str) -> dict:
        timeout = float(lock.get("timeout") or TIMEOUT_DEFAULT)
        if timeout < 0 or timeout > TIMEOUT_MAX:
            timeout = TIMEOUT_MAX
        lock = dict(lock, root=root, timeout=timeout, expire=time.time() + timeout, token=token)
        with self.db.write() as s:
            s.add(Lock(**{k: lock[k] for k in _FIELDS}))
        return lock

    def refresh(self, token: str, timeout: float) -> dict | None:
        if timeout < 0 or timeout > TIMEOUT_MAX:
            timeout = TIMEOUT_MAX
        with self.db.write() as s:
            row = s.get(Lock, token)
            if row is None:
                return None
            row.timeout, row.expire = timeout, time.time() + timeout
            return _as_dict(row)

    def delete(self, token: str) -> bool:
        with self.db.write() as s:
            return s.execute(delete(Lock).where(Lock.token == token)).rowcount > 0

    def at(self, root: str, *, include_root: bool, include_children: bool) -> list[dict]:
        params = {"root": root, "below": _like_prefix(root.rstrip("/") + "/"),
                  "now": time.time()}
        with self.db.fast_read() as s:  # asked on every write request (appliance.db.fast)
            rows = s.execute(_AT[include_root, include_children], params).all()
        return [dict(zip(_COLUMNS, r)) for r in rows]

    def under(self, root: str) -> list[dict]:
        """Every live lock at or below `root` (one query; callers filter in memory)."""
        return self.at(root, include_root=True, include_children=True)

    def purge_expired(self) -> int:
        with self.db.write() as s:
            return s.execute(delete(Lock).where(Lock.expire < time.time(),
                                                Lock.expire >= 0)).rowcount
