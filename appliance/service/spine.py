"""The spine every Session operation follows, as building blocks for the Session
and its operation objects (moving, copying, locking, properties, versions):
clean and place the path, find its tree and decide (appliance.service.access,
and appliance.service.views for `@versions` and `@trash`), open one transaction,
look the rows up, audit the outcome. Adapters never see it; they call Session.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
import random
import time
from typing import TYPE_CHECKING, Literal, TypeVar, overload

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.engine import contention
from strongroom.appliance.db.hotpath import HotPath, NodeRow, VersionRow
from strongroom.appliance.db.models import Node, Version
from strongroom.appliance.errors import (Busy, ConcurrentChange, Denied, Hidden, MissingParent,
                                         NotFound)
from strongroom.appliance.notify import outbox
from strongroom.appliance.service import paths
from strongroom.appliance.service.entry import Entry
from strongroom.appliance.service.access import AccessPolicy, ClientInfo, Db, hot
from strongroom.appliance.service.principal import Principal
from strongroom.appliance.service.grants import drop_grants
from strongroom.appliance.service.views import Views, in_view

if TYPE_CHECKING:
    from strongroom.appliance.app import App

# A node and a version as a lookup found them: ORM rows, or the hot path's.
N = TypeVar("N", Node, NodeRow)
V = TypeVar("V", Version, VersionRow)
R = TypeVar("R")

# Write transactions that change nothing in the tree, only add their audit event:
# they need not wait for the tree's writers (Spine.client's lock).
AUDIT_ONLY = frozenset({"read"})
# How often retried() runs an operation the database gave up on under contention.
ATTEMPTS = 4


class Contended(Busy):
    """The database gave up on a transaction under contention (a deadlock or a
    serialization failure); nothing of it was committed, and run again it may well
    succeed (Spine.retried). A Busy for whoever does not retry it."""


class Spine:
    """One principal on one protocol from one address. `per_request`: it lives for
    one request (WebDAV), so stat results and the rows its lookups found may be
    remembered until its next write; a long-lived one (SFTP) must see other
    sessions' changes and remembers nothing."""

    def __init__(self, app: "App", principal: Principal, protocol: str, address: str | None,
                 *, per_request: bool):
        self.app, self.principal = app, principal
        self.protocol, self.address = protocol, address
        self.policy = AccessPolicy(app, principal)
        self.views = Views(self.policy)
        # stat results (or the NotFound raised) by the path asked for
        self._stats: dict[paths.RawPath, Entry | NotFound] | None = {} if per_request else None
        # Rows this request's lookups found: target -> (parent, node, version).
        self._located: dict[paths.Target, tuple[NodeRow | None, NodeRow | None,
                                                VersionRow | None]] | None = \
            {} if per_request else None

    # -- paths ------------------------------------------------------------------------

    def target(self, path: paths.RawPath) -> paths.Target:
        """Clean `path` and place it in this principal's view."""
        parts = paths.clean(path)
        if self.principal.sees_all_clients:
            if not parts:
                return paths.Target(None, ())
            return paths.Target(parts[0], parts[1:], parts[:1])
        if parts and parts[0] in self.policy.libraries():
            return paths.Target(parts[0], parts[1:], parts[:1])
        return paths.Target(self.own_tree(), parts)

    @staticmethod
    def view_path(t: paths.Target) -> str:
        return paths.join(t.prefix + t.rel)

    def view_of(self, canonical: str) -> str | None:
        """The path in this principal's view of a canonical '/<client>/...' path, or None."""
        parts = paths.clean(canonical)
        if self.principal.sees_all_clients or (parts and parts[0] in self.policy.libraries()):
            return paths.join(parts)
        if not parts or parts[0] != self.own_tree():
            return None
        return paths.join(parts[1:])

    def own_tree(self) -> str:
        """The current name of a client user's own tree. The principal holds the
        name it had at login; `strongroom client rename` changes it under open
        sessions, which follow within ACCESS_TTL (at once in the renaming process)."""
        return self.policy.own_tree().name

    # -- decisions --------------------------------------------------------------------

    def client(self, db: Db, t: paths.Target, action: str, *,
               lock: bool = False) -> ClientInfo | None:
        """The client row a target lives in, after the permission decision. `lock`
        (a write transaction): first lock that row, so that all this transaction
        reads next is what the client's earlier writers committed (repo.lock_tree)."""
        if t.client is None:  # the view root
            if action != "list":
                raise Denied("the top folder only lists clients; clients are made with the CLI")
            return None
        client: ClientInfo | None
        if not t.prefix and not self.principal.sees_all_clients:
            client = self.policy.own_tree(hot(db))
        else:
            client = self.policy.tree(hot(db), t.client)
        if client is None:
            raise NotFound(f"no such folder: {self.view_path(t)}")
        if lock and self.app.db.locks_rows:
            repo.lock_tree(hot(db), client.id)
        self.decide(db, client, t, action)
        return client

    def decide(self, db: Db, client: ClientInfo, t: paths.Target, action: str) -> None:
        """Raise Denied or Hidden unless the principal may `action` at `t`."""
        if in_view(t.rel):
            # transaction() opens an ORM session for a view path: resolving one walks rows
            assert isinstance(db, OrmSession), "a view path is decided in an ORM session"
            self.views.decide(db, client, t, action)
        else:
            self.policy.require(db, client, t.rel, action, self.view_path(t))

    def may(self, action: str, t: paths.Target) -> bool:
        """The access decision alone: whether `action` would be allowed at `t`."""
        try:
            with self.app.db.read() as db:
                self.client(db, t, action)
        except (Denied, Hidden, NotFound):
            return False
        return True

    # -- transactions -----------------------------------------------------------------

    @overload
    def transaction(self, action: str, t: paths.Target, *, write: bool, audited: bool = True,
                    right: str | None = None, fast: Literal[False] = False
                    ) -> AbstractContextManager[tuple[OrmSession, ClientInfo]]: ...

    @overload
    def transaction(self, action: str, t: paths.Target, *, write: bool, audited: bool = True,
                    right: str | None = None, fast: Literal[True]
                    ) -> AbstractContextManager[tuple[HotPath, ClientInfo]]: ...

    def transaction(self, action: str, t: paths.Target, *, write: bool, audited: bool = True,
                    right: str | None = None, fast: bool = False
                    ) -> AbstractContextManager[tuple[Db, ClientInfo]]:
        """A transaction for one operation in a client's tree, yielding (db, client);
        audits success in it and denials after it (Denied at the staff root, which
        only lists trees: Session.list does that without one). `fast`: a HotPath on
        the DBAPI cursor (appliance.db.fast), for operations that only run statements
        on a HotPath; a view path is decided in an ORM session (resolving it walks
        rows), whose connection the operation then gets."""
        return self._transaction(action, t, write, audited, right or action, fast)

    @contextmanager
    def _transaction(self, action: str, t: paths.Target, write: bool, audited: bool,
                     right: str, fast: bool) -> Iterator[tuple[Db, ClientInfo]]:
        db = self.app.db
        # An audit-only action reads; its event is recorded after it (Chain.record: held
        # in memory while the database's disk is full, so that reads go on).
        own_event = audited and action in AUDIT_ONLY
        write = write and action not in AUDIT_ONLY
        opened: Callable[[], AbstractContextManager[Db]]
        if fast and not in_view(t.rel):
            opened = db.fast_write if write else db.fast_read
        else:
            opened = db.write if write else db.read
        if write:
            self.forget()
        try:
            with opened() as s:
                client = self.client(s, t, right, lock=write and action not in AUDIT_ONLY)
                if client is None:
                    raise Denied("the top folder only lists clients")
                yield (hot(s) if fast else s), client
                if audited and not own_event:
                    self.audit(s, action, t)
            if own_event:
                self.record(action, t)
        except (Denied, Hidden) as e:
            outcome = "hidden" if isinstance(e, Hidden) else "denied"
            try:
                self.record(action, t, outcome=outcome, detail=str(e))
            except Exception as failed:
                busy = self._contended(failed, t)
                if busy is None:
                    raise
                raise busy from failed
            raise
        except IntegrityError:
            raise ConcurrentChange(f"{self.view_path(t)} changed concurrently; try again") \
                from None
        except Exception as e:
            busy = self._contended(e, t)
            if busy is None:
                raise
            raise busy from e

    def _contended(self, e: Exception, t: paths.Target) -> Busy | None:
        """What to raise for `e`, met in a transaction at `t`: Contended or Busy if
        the database gave up on it under contention, else None."""
        if isinstance(e, Busy):
            return None
        kind = contention(e)
        if kind is None:
            return None
        detail = "another change got in the way" if kind == "retry" else \
            "the database stayed locked"
        return (Contended if kind == "retry" else Busy)(
            f"{self.view_path(t)}: not done, {detail}; try again")

    def retried(self, op: Callable[[], R]) -> R:
        """op() (an operation made of this spine's transactions), run again after a
        short random wait while the database gives up on it under contention (each
        attempt rolled back whole); the last attempt's Contended, a Busy, if it still
        does after ATTEMPTS. op must change nothing outside the database before its
        last transaction commits."""
        for attempt in range(1, ATTEMPTS):
            try:
                return op()
            except Contended:
                time.sleep(random.uniform(0.005, 0.02) * 2 ** attempt)
        return op()

    def audit(self, db: Db, action: str, t: paths.Target | str, outcome: str = "ok",
              detail: str | None = None) -> None:
        """An audit event of this principal; `t` a Target or a canonical path."""
        path = t if isinstance(t, str) else t.canonical
        self.app.audit.append(db, actor=self.principal.login, protocol=self.protocol,
                              address=self.address, action=action, path=path,
                              outcome=outcome, detail=detail)

    def record(self, action: str, t: paths.Target | str, outcome: str = "ok",
               detail: str | None = None) -> None:
        """As audit(), for an event that is a transaction of its own (Chain.record)."""
        path = t if isinstance(t, str) else t.canonical
        self.app.audit.record(self.app.db, actor=self.principal.login, protocol=self.protocol,
                              address=self.address, action=action, path=path,
                              outcome=outcome, detail=detail)

    def notify(self, db: Db, change: outbox.Change) -> None:
        """Queue `change` (made by this principal) for the people who are to hear of
        it, in the transaction that commits it (appliance.notify.outbox): it is
        notified if and only if it commits. Nothing for a path in a view."""
        if in_view(change.rel) or (change.old is not None and in_view(change.old)):
            return
        p = self.principal
        outbox.record(hot(db), self.app.config.notify.ignore,
                      outbox.Actor(p.login, p.role, p.user_id), change)

    # -- rows -------------------------------------------------------------------------

    def node(self, db: OrmSession, client: ClientInfo, t: paths.Target) -> Node:
        """The live node at `t`; NotFound if none."""
        return self._found(repo.walk(db, client.id, t.rel), t)

    def node_row(self, db: HotPath, client: ClientInfo, t: paths.Target) -> NodeRow:
        """As node(), on the hot path."""
        return self._found(repo.walk_row(db, client.id, t.rel), t)

    def _found(self, node: N | None, t: paths.Target) -> N:
        if node is None:
            raise NotFound(f"no such file or folder: {self.view_path(t)}")
        return node

    def place(self, db: OrmSession, client: ClientInfo, t: paths.Target
              ) -> tuple[Node, Node | None, Version | None]:
        """The folder `t` goes in, the live node at `t` (or None) and its version."""
        return self._placed(repo.locate(db, client.id, t.rel) if t.rel else None, t)

    def place_rows(self, db: HotPath, client: ClientInfo, t: paths.Target, *,
                   recall: bool = False) -> tuple[NodeRow, NodeRow | None, VersionRow | None]:
        """As place(), on the hot path. `recall`: rows this request already looked up
        will do (reads only: a write must decide on what its own transaction sees)."""
        hit = self._located.get(t) if recall and self._located is not None else None
        return self._placed(hit or (repo.locate_rows(db, client.id, t.rel) if t.rel else None),
                            t)

    def _placed(self, found: tuple[N | None, N | None, V | None] | None, t: paths.Target
                ) -> tuple[N, N | None, V | None]:
        if found is None:
            raise Denied("the top folder cannot be replaced")
        parent, node, version = found
        if parent is None or not parent.is_dir:
            raise MissingParent(f"parent folder does not exist: {self.view_path(t)}")
        return parent, node, version

    def lookup(self, db: HotPath, client: ClientInfo, t: paths.Target
               ) -> tuple[NodeRow | None, VersionRow | None]:
        """The live node at `t` and its version: one query, or none if this request
        has seen the rows (a PUT looks at the file, then at its folder)."""
        recalled = self._recall(t)
        if recalled is not None:
            return recalled
        if not t.rel:
            return repo.walk_row(db, client.id, ()), None
        parent, node, version = repo.locate_rows(db, client.id, t.rel)
        if self._located is not None:
            self._located[t] = (parent, node, version)
        return node, version

    def _recall(self, t: paths.Target) -> tuple[NodeRow | None, VersionRow | None] | None:
        """(node, version) at `t` as this request's lookups found them, or None."""
        for seen, (parent, node, version) in (self._located or {}).items():
            if seen == t:
                return node, version
            if seen.client == t.client and seen.rel[:-1] == t.rel and \
                    (parent is None or parent.is_dir):
                return parent, None  # a located row's folder (or its absence)
        return None

    def remembered_stat(self, path: paths.RawPath,
                        stat: Callable[[paths.RawPath], Entry]) -> Entry:
        """stat(path), remembered by a per-request spine until its next write (a
        NotFound too); just stat(path) for a long-lived one."""
        if self._stats is None:
            return stat(path)
        hit = self._stats.get(path)
        if hit is None:
            try:
                hit = self._stats[path] = stat(path)
            except NotFound as e:
                hit = self._stats[path] = e
        if isinstance(hit, NotFound):
            raise hit
        return hit

    def forget(self) -> None:
        """Drop what a per-request spine remembered: it is about to write."""
        if self._stats:
            self._stats.clear()
        if self._located:
            self._located.clear()

    def drop_grants(self, db: OrmSession, client: ClientInfo, folder: tuple[str, ...]) -> None:
        """The grants of a deleted or replaced folder go, audited."""
        dropped = drop_grants(db, client.id, folder)
        if dropped:
            self.app.access_changed(db)
            self.audit(db, "acl-drop", paths.join((client.name,) + folder),
                       "grants of the deleted folder: " + "; ".join(dropped))
