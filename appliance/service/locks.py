"""WebDAV lock records in the metadata database, keyed by canonical path
('/<client>/<path>') so that every user's view of a node sees the same locks and
locks survive a restart. Only the service layer uses this store: taking,
refreshing and releasing a lock are Session operations (rights, audit), and the
admin's `strongroom locks` goes through Admin."""
import time
from collections.abc import Iterable
from typing import Any, TypeAlias

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.dml import rowcount
from strongroom.appliance.db import Database
from strongroom.appliance.db.hotpath import AnySelect, HotPath
from strongroom.appliance.db.models import Lock

_FIELDS = ("token", "root", "depth", "scope", "type", "owner", "principal", "timeout", "expire")
# A lock as wsgidav's lock manager hands it over and takes it back (wsgidav ships no
# types): the keys of _FIELDS, plus whatever wsgidav adds to a lock it creates.
LockDict: TypeAlias = dict[str, Any]


def _as_dict(row: Lock) -> LockDict:
    return {k: getattr(row, k) for k in _FIELDS}


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern (escape character '/') matching strings that start with `prefix`."""
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def _at(include_root: bool, include_children: bool) -> AnySelect:
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
# The live locks of a tree held by anyone but one login: asked before every write.
_L = Lock.__table__.c
_OTHERS = select(_L.root, _L.depth).where(
    or_(_L.root == bindparam("top"), _L.root.like(bindparam("below"), escape="/")),
    _L.principal != bindparam("login"), _L.expire >= bindparam("now"))


class LockStore:
    """Lock rows. Every lock expires: a timeout is at most `lock_max` seconds (a
    client asking for more, or for Infinite, gets that and refreshes)."""

    def __init__(self, db: Database, lock_max: float):
        self.db = db
        self.lock_max = lock_max

    def capped(self, timeout: float | str | None) -> float:
        timeout = float(timeout if timeout is not None else self.lock_max)
        return self.lock_max if timeout <= 0 or timeout > self.lock_max else timeout

    def get(self, token: str) -> LockDict | None:
        with self.db.read() as s:
            row = s.get(Lock, token)
            if row is None or row.expire < time.time():
                return None
            return _as_dict(row)

    def create(self, s: OrmSession, root: str, lock: LockDict, token: str) -> LockDict:
        """Add a lock in the caller's transaction `s`."""
        timeout = self.capped(lock.get("timeout"))
        owner = lock.get("owner") or ""   # wsgidav's <owner> element, as XML bytes
        owner = owner.decode("utf-8", "replace") if isinstance(owner, bytes) else owner
        lock = dict(lock, root=root, timeout=timeout, expire=time.time() + timeout, token=token,
                    owner=owner)
        s.add(Lock(**{k: lock[k] for k in _FIELDS}))
        return lock

    def refresh(self, s: OrmSession, token: str, timeout: float | str | None) -> LockDict | None:
        row = s.get(Lock, token)
        if row is None or row.expire < time.time():
            return None
        row.timeout = self.capped(timeout)
        row.expire = time.time() + row.timeout
        return _as_dict(row)

    def delete(self, s: OrmSession, token: str) -> bool:
        return rowcount(s.execute(delete(Lock).where(Lock.token == token))) > 0

    def under(self, root: str) -> list[LockDict]:
        """Every live lock at or below `root` (one query; callers filter in memory)."""
        params = {"root": root, "below": _like_prefix(root.rstrip("/") + "/"),
                  "now": time.time()}
        with self.db.fast_read() as s:  # asked on every write request (appliance.db.fast)
            rows = s.execute(_AT[True, True], params).all()
        return [dict(zip(_COLUMNS, r)) for r in rows]

    def of_others(self, db: HotPath, top: str, login: str) -> list[tuple[str, str]]:
        """(root, depth) of every live lock in the tree at canonical `top` ('/<client>')
        that `login` does not hold, read in the caller's transaction `db`."""
        params = {"top": top, "below": _like_prefix(top + "/"), "login": login,
                  "now": time.time()}
        return [(r[0], r[1]) for r in db.execute(_OTHERS, params).all()]

    def follow(self, s: OrmSession, old: str, new: str) -> int:
        """Locks at or below canonical path `old` move to `new` (their file or folder was
        renamed), in the caller's transaction `s`; how many moved."""
        rows = s.scalars(select(Lock).where(or_(Lock.root == old, Lock.root.like(
            _like_prefix(old + "/"), escape="/"))))
        moved = 0
        for row in rows:
            row.root, moved = new + row.root[len(old):], moved + 1
        return moved

    def end(self, s: OrmSession, root: str) -> int:
        """Locks at or below canonical path `root` end (what they lock is gone)."""
        return rowcount(s.execute(delete(Lock).where(or_(Lock.root == root, Lock.root.like(
            _like_prefix(root + "/"), escape="/"))).execution_options(
                synchronize_session=False)))

    def listed(self, s: OrmSession, *, principal: str | None = None,
               root: str | None = None) -> list[LockDict]:
        """Live locks, oldest expiry first: of one owner, at or below one path, or all."""
        q = select(Lock).where(Lock.expire >= time.time()).order_by(Lock.expire, Lock.token)
        if principal is not None:
            q = q.where(Lock.principal == principal)
        if root is not None:
            q = q.where(or_(Lock.root == root,
                            Lock.root.like(_like_prefix(root.rstrip("/") + "/"), escape="/")))
        return [_as_dict(row) for row in s.scalars(q)]

    def rename_tree(self, s: OrmSession, old: str, new: str) -> int:
        """Locks of tree `old` follow it to its new name `new` (a client renamed)."""
        rows = s.scalars(select(Lock).where(or_(Lock.root == f"/{old}", Lock.root.like(
            _like_prefix(f"/{old}/"), escape="/"))))
        moved = 0
        for row in rows:
            row.root, moved = f"/{new}" + row.root[len(old) + 1:], moved + 1
        return moved

    def rename_owner(self, s: OrmSession, old: str, new: str) -> int:
        """Locks of login `old` belong to `new` (a user renamed)."""
        return rowcount(s.execute(update(Lock).where(Lock.principal == old)
                         .values(principal=new)))

    def drop(self, s: OrmSession, tokens: Iterable[str]) -> int:
        listed = list(tokens)
        if not listed:
            return 0
        return rowcount(s.execute(delete(Lock).where(Lock.token.in_(listed))))

    def cap(self) -> int:
        """Shorten every stored lock to at most `lock_max` from now (locks taken
        before the cap existed, or under a larger one); return how many changed."""
        latest = time.time() + self.lock_max
        with self.db.write() as s:
            return rowcount(s.execute(update(Lock).where(Lock.expire > latest)
                             .values(expire=latest, timeout=self.lock_max)))

    def purge_expired(self) -> int:
        with self.db.write() as s:
            return rowcount(s.execute(delete(Lock).where(Lock.expire < time.time())))
