"""The spine every Session operation follows, as building blocks for the Session
and its operation objects (moving, copying, locking, properties, versions):
clean and place the path, find its tree and decide (appliance.service.access,
and appliance.service.views for `@versions` and `@trash`), open one transaction,
look the rows up, audit the outcome. Adapters never see it; they call Session.
"""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import Node, Version
from strongroom.appliance.errors import ConcurrentChange, Denied, Hidden, MissingParent, NotFound
from strongroom.appliance.service import paths
from strongroom.appliance.service.access import AccessPolicy, ClientInfo
from strongroom.appliance.service.grants import drop_grants
from strongroom.appliance.service.views import Views, in_view


class Spine:
    """One principal on one protocol from one address. `per_request`: it lives for
    one request (WebDAV), so stat results and the rows its lookups found may be
    remembered until its next write; a long-lived one (SFTP) must see other
    sessions' changes and remembers nothing."""

    def __init__(self, app, principal, protocol: str, address: str | None, *,
                 per_request: bool):
        self.app, self.principal = app, principal
        self.protocol, self.address = protocol, address
        self.policy = AccessPolicy(app, principal)
        self.views = Views(self.policy)
        self._stats: dict | None = {} if per_request else None
        # Rows this request's lookups found: target -> (parent, node, version).
        self._located: dict | None = {} if per_request else None

    # -- paths ------------------------------------------------------------------------

    def target(self, path) -> paths.Target:
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

    def client(self, db, t: paths.Target, action: str) -> ClientInfo | None:
        """The client row a target lives in, after the permission decision."""
        if t.is_view_root:
            if action != "list":
                raise Denied("the top folder only lists clients; clients are made with the CLI")
            return None
        if not t.prefix and not self.principal.sees_all_clients:
            client = self.policy.own_tree(db)
        else:
            client = self.policy.tree(db, t.client)
        if client is None:
            raise NotFound(f"no such folder: {self.view_path(t)}")
        self.decide(db, client, t, action)
        return client

    def decide(self, db, client, t: paths.Target, action: str) -> None:
        """Raise Denied or Hidden unless the principal may `action` at `t`."""
        if in_view(t.rel):
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

    @contextmanager
    def transaction(self, action: str, t: paths.Target, *, write: bool, audited: bool = True,
                    right: str | None = None, fast: bool = False):
        """A transaction for one operation, yielding (db, client); audits success in
        it and denials after it. `fast`: on the DBAPI cursor (appliance.db.fast),
        for operations that only use the repo functions marked "also fast" (never
        in a view: resolving a view path walks ORM rows)."""
        db = self.app.db
        if fast and not in_view(t.rel):
            opened = db.fast_write if write else db.fast_read
        else:
            opened = db.write if write else db.read
        if write:
            self.forget()
        try:
            with opened() as s:
                client = self.client(s, t, right or action)
                yield s, client
                if audited:
                    self.audit(s, action, t)
        except (Denied, Hidden) as e:
            outcome = "hidden" if isinstance(e, Hidden) else "denied"
            with self.app.db.write() as s:
                self.audit(s, action, t, outcome=outcome, detail=str(e))
            raise
        except IntegrityError:
            raise ConcurrentChange(f"{self.view_path(t)} changed concurrently; try again") \
                from None

    def audit(self, db, action, t, outcome="ok", detail=None) -> None:
        """An audit event of this principal; `t` a Target or a canonical path."""
        path = t if isinstance(t, str) else t.canonical
        self.app.audit.append(db, actor=self.principal.login, protocol=self.protocol,
                              address=self.address, action=action, path=path,
                              outcome=outcome, detail=detail)

    # -- rows -------------------------------------------------------------------------

    def node(self, db, client, t, walk=repo.walk) -> Node:
        """The live node at `t`; NotFound if none. `walk`: repo.walk_row on the hot path."""
        node = walk(db, client.id, t.rel)
        if node is None:
            raise NotFound(f"no such file or folder: {self.view_path(t)}")
        return node

    def place(self, db, client, t, *, recall: bool = False, locate=repo.locate
              ) -> tuple[Node, Node | None, Version | None]:
        """The folder `t` goes in, the live node at `t` (or None) and its version.
        `recall`: rows this request already looked up will do (reads only: a write
        must decide on what its own transaction sees). `locate`: repo.locate_rows on
        the hot path."""
        if not t.rel:
            raise Denied("the top folder cannot be replaced")
        hit = self._located.get(t) if recall and self._located is not None else None
        parent, node, version = hit or locate(db, client.id, t.rel)
        if parent is None or not parent.is_dir:
            raise MissingParent(f"parent folder does not exist: {self.view_path(t)}")
        return parent, node, version

    def lookup(self, db, client, t) -> tuple[Node | None, Version | None]:
        """The live node at `t` and its version: one query, or none if this request
        has seen the rows (a PUT looks at the file, then at its folder)."""
        recalled = self._recall(t)
        if recalled is not None:
            return recalled
        if not t.rel:
            return repo.walk(db, client.id, ()), None
        parent, node, version = repo.locate_rows(db, client.id, t.rel)
        if self._located is not None:
            self._located[t] = (parent, node, version)
        return node, version

    def _recall(self, t) -> tuple[Node | None, Version | None] | None:
        """(node, version) at `t` as this request's lookups found them, or None."""
        for seen, (parent, node, version) in (self._located or {}).items():
            if seen == t:
                return node, version
            if seen.client == t.client and seen.rel[:-1] == t.rel and \
                    (parent is None or parent.is_dir):
                return parent, None  # a located row's folder (or its absence)
        return None

    def remembered_stat(self, path, stat):
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

    def drop_grants(self, db, client, folder: tuple) -> None:
        """The grants of a deleted or replaced folder go, audited."""
        dropped = drop_grants(db, client.id, folder)
        if dropped:
            self.app.access_changed(db)
            self.audit(db, "acl-drop", paths.join((client.name,) + folder),
                       "grants of the deleted folder: " + "; ".join(dropped))
