"""The one service layer every protocol goes through.

A `Session` is one authenticated principal talking over one protocol from one
address. Every operation follows the same spine: clean and confine the path,
decide whether the principal may do it, touch the metadata and the store,
write the audit event. Adapters translate its domain errors and nothing else.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import Client, Node, Version
from strongroom.appliance.errors import (BadRequest, ConcurrentChange, Conflict, CorruptData, Denied,
                                         Hidden, MissingParent, NoSpace, NotFound, QuotaExceeded,
                                         TooLarge)
from strongroom.appliance.service import paths
from strongroom.appliance.service.access import AccessMixin
from strongroom.appliance.service.copying import CopyingMixin
from strongroom.appliance.service.locking import LockingMixin
from strongroom.appliance.service.grants import drop_grants, move_grants
from strongroom.appliance.service.views import ViewsMixin, in_view
from strongroom.appliance.service.properties import PropertiesMixin
from strongroom.appliance.service.entry import (Entry, VersionInfo, checked_mtime, dir_entry, entry_for,
                                     file_entry)
from strongroom.appliance.service.transfer import Limits, Origin, ReadHandle, Upload, human


@dataclass(frozen=True)
class ClientInfo:
    """What an operation needs of a client row; a snapshot, never written back.
    Usage changes with every upload, so it is not part of it: repo.used_bytes
    reads it when a quota needs it, and repo.add_usage changes it in SQL."""
    id: int
    name: str
    quota_bytes: int | None
    wrapped_key: bytes
    kind: str = "client"


class Session(AccessMixin, ViewsMixin, PropertiesMixin, LockingMixin, CopyingMixin):
    def __init__(self, app, principal, protocol: str, address: str | None = None, *,
                 per_request: bool = False):
        """`per_request`: the session lives for one request (WebDAV), so stat results
        may be remembered until its next write; a long-lived session (SFTP) must
        see other sessions' changes and remembers nothing."""
        self.app = app
        self.principal = principal
        self.protocol = protocol
        self.address = address
        self._stats: dict | None = {} if per_request else None
        # Rows this request's lookups found: target -> (parent, node, version).
        self._located: dict | None = {} if per_request else None
        # ClientInfo snapshots by client name and this principal's grants by client
        # id, with the (generation, time) they were read at, shared by all sessions
        # of the principal in this process (WebDAV makes one per request): see
        # remembered().
        self._clients, self._grant_cache = app.access_memo(principal)
        # A long-lived session counts as active until close() (appliance.metrics).
        self._active = None
        if not per_request and app.metrics is not None:
            self._active = app.metrics.sessions.labels(protocol)
            self._active.inc()

    def close(self) -> None:
        """The session's connection ended. Safe to call twice."""
        active, self._active = self._active, None
        if active is not None:
            active.dec()

    # -- views and decisions ---------------------------------------------------------

    def target(self, path) -> paths.Target:
        """Clean `path` and place it in this principal's view."""
        parts = paths.clean(path)
        if self.principal.sees_all_clients:
            if not parts:
                return paths.Target(None, ())
            return paths.Target(parts[0], parts[1:], parts[:1])
        if parts and parts[0] in self.libraries():
            return paths.Target(parts[0], parts[1:], parts[:1])
        return paths.Target(self.own_tree(), parts)

    def view_path(self, t: paths.Target) -> str:
        return paths.join(t.prefix + t.rel)

    def view_of(self, canonical: str) -> str | None:
        """The path in this principal's view of a canonical '/<client>/...' path, or None."""
        parts = paths.clean(canonical)
        if self.principal.sees_all_clients or (parts and parts[0] in self.libraries()):
            return paths.join(parts)
        if not parts or parts[0] != self.own_tree():
            return None
        return paths.join(parts[1:])

    def _client(self, s, t: paths.Target, action: str):
        """The client row a target lives in, after the permission decision."""
        if t.is_view_root:
            if action != "list":
                raise Denied("the top folder only lists clients; clients are made with the CLI")
            return None
        if not t.prefix and not self.principal.sees_all_clients:
            client = self._own_client(s)
        else:
            client = self.remembered(self._clients, t.client)
        if client is None:
            stamp = self.access_stamp()
            row = repo.client_info(s, t.client)
            if row is None:
                raise NotFound(f"no such folder: {self.view_path(t)}")
            client = ClientInfo(*row[:3], bytes(row[3]), row[4])
            self._clients[t.client] = (*stamp, client)
        self._decide(s, client, t, action)
        return client

    def own_tree(self) -> str:
        """The current name of a client user's own tree. The principal holds the
        name it had at login; `strongroom client rename` changes it under open
        sessions, which follow within ACCESS_TTL (at once in the renaming process)."""
        return self._own_client().name

    def _own_client(self, s=None) -> ClientInfo:
        """A client user's client, found by id (remembered as _clients[id]: names
        are str, so the keys never meet), in `s` or a read transaction of its own."""
        client_id = self.principal.client_id
        client = self.remembered(self._clients, client_id)
        if client is None:
            stamp = self.access_stamp()
            if s is None:
                with self.app.db.fast_read() as s:
                    row = repo.client_info_by_id(s, client_id)
            else:
                row = repo.client_info_by_id(s, client_id)
            if row is None:
                raise NotFound("no such file or folder: your client was removed")
            client = ClientInfo(*row[:3], bytes(row[3]), row[4])
            self._clients[client_id] = (*stamp, client)
        return client

    @contextmanager
    def _op(self, action: str, t: paths.Target, *, write: bool, audited: bool = True,
            right: str | None = None, fast: bool = False):
        """A transaction for one operation; audits success in it and denials after it.
        `fast`: on the DBAPI cursor (appliance.db.fast), for operations that only
        use the repo functions marked "also fast" (never in a view: resolving a
        view path walks ORM rows)."""
        db = self.app.db
        if fast and not in_view(t.rel):
            opened = db.fast_write if write else db.fast_read
        else:
            opened = db.write if write else db.read
        if write:
            self._forget()
        try:
            with opened() as s:
                client = self._client(s, t, right or action)
                yield s, client
                if audited:
                    self._audit(s, action, t)
        except (Denied, Hidden) as e:
            outcome = "hidden" if isinstance(e, Hidden) else "denied"
            with self.app.db.write() as s:
                self._audit(s, action, t, outcome=outcome, detail=str(e))
            raise
        except IntegrityError:
            raise ConcurrentChange(f"{self.view_path(t)} changed concurrently; try again") \
                from None

    def _audit(self, s, action, t, outcome="ok", detail=None) -> None:
        path = t if isinstance(t, str) else t.canonical
        self.app.audit.append(s, actor=self.principal.login, protocol=self.protocol,
                     address=self.address, action=action, path=path, outcome=outcome,
                     detail=detail)

    def _node(self, s, client, t) -> Node:
        node = repo.walk(s, client.id, t.rel)
        if node is None:
            raise NotFound(f"no such file or folder: {self.view_path(t)}")
        return node

    def _place(self, s, client, t, *, recall: bool = False
               ) -> tuple[Node, Node | None, Version | None]:
        """The folder `t` goes in, the live node at `t` (or None) and its version.
        `recall`: rows this request already looked up will do (reads only: a write
        must decide on what its own transaction sees)."""
        if not t.rel:
            raise Denied("the top folder cannot be replaced")
        hit = self._located.get(t) if recall and self._located is not None else None
        parent, node, version = hit or repo.locate(s, client.id, t.rel)
        if parent is None or not parent.is_dir:
            raise MissingParent(f"parent folder does not exist: {self.view_path(t)}")
        return parent, node, version

    # -- reading the tree --------------------------------------------------------

    def stat(self, path):
        if self._stats is None:
            return self._stat(path)
        hit = self._stats.get(path)
        if hit is None:
            try:
                hit = self._stats[path] = self._stat(path)
            except NotFound as e:
                hit = self._stats[path] = e
        if isinstance(hit, NotFound):
            raise hit
        return hit

    def _stat(self, path):
        t = self.target(path)
        with self._op("stat", t, write=False, audited=False, right="list",
                      fast=bool(t.rel)) as (s, client):
            if client is None:
                return dir_entry("/", "")
            if in_view(t.rel):
                return self._view_stat(s, client, t)
            node, version = self._lookup(s, client, t)
            self._hide_unreadable_file(s, client, t, node)
            if node is not None and node.name:
                return entry_for(self.view_path(t), node, version)
            if node is not None:
                return dir_entry(self.view_path(t), t.prefix[-1] if t.prefix else "", node)
        # Raised after a clean end of the transaction: a rollback would expire the
        # rows _lookup remembered.
        raise NotFound(f"no such file or folder: {self.view_path(t)}")

    def _lookup(self, s, client, t) -> tuple[Node | None, Version | None]:
        """The live node at `t` and its version: one query, or none if this request
        has seen the rows (a PUT looks at the file, then at its folder)."""
        recalled = self._recall(t)
        if recalled is not None:
            return recalled
        if not t.rel:
            return repo.walk(s, client.id, ()), None
        parent, node, version = repo.locate(s, client.id, t.rel)
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

    def _forget(self) -> None:
        """Drop what a per-request session remembered: it is about to write."""
        if self._stats:
            self._stats.clear()
        if self._located:
            self._located.clear()

    def list(self, path):
        t = self.target(path)
        with self._op("list", t, write=False, audited=False) as (s, client):
            if client is None:
                return [dir_entry(f"/{c.name}", c.name, repo.root_node(s, c.id))
                        for c in self._visible_trees(s)]
            if in_view(t.rel):
                return self._view_list(s, client, t)
            node = self._node(s, client, t)
            if not node.is_dir:
                raise Conflict(f"not a folder: {self.view_path(t)}")
            base = self.view_path(t).rstrip("/")
            everything = self._may_read_all(s, client, t.rel)
            entries = [entry_for(f"{base}/{n.name}", n, v)
                       for n, v in repo.children_with_versions(s, node.id)
                       if everything or self._visible_child(s, client, t.rel, n)]
            if t.rel:
                return entries
            entries[:0] = self._view_root_entries(s, client, t)
            if t.prefix or self.principal.sees_all_clients:
                return entries
            libraries = self.libraries()
            return [e for e in entries if e.name not in libraries] + sorted(
                self._library_entries(s, libraries), key=lambda e: e.name)

    def _library_entries(self, s, names):
        for name in names:
            row = repo.client_by_name(s, name)
            if row is not None:
                yield dir_entry(f"/{name}", name, repo.root_node(s, row.id))

    def open_read(self, path, version_id: int | None = None, *,
                  metered: bool = True) -> ReadHandle:
        """`metered`: the bytes read count as sent to the client (not for copies)."""
        t = self.target(path)
        with self._op("read", t, write=True, right="read") as (s, client):
            node, version = self._readable(s, client, t, version_id)
            key = self.app.keyring.data_key(client.wrapped_key, version.wrapped_key)
            origin = Origin(client.name, t.canonical, version.id, version.blob_id)
            try:
                reader = self.app.provider.open_blob(version.blob_id, key, version.size,
                                                     version.holes)
            except CorruptData as e:
                origin.corrupt(e)
                raise
            metrics = self.app.metrics if metered else None
            meter = None if metrics is None else metrics.meter(self.protocol, "down")
            entry = (self._view_stat(s, client, t) if in_view(t.rel)
                     else file_entry(self.view_path(t), node, version))
            return ReadHandle(entry, reader, origin, meter)

    def _readable(self, s, client, t, version_id):
        if in_view(t.rel):
            return self._view_version(s, client, t)
        node = self._node(s, client, t)
        if node.is_dir:
            raise Conflict(f"is a folder: {self.view_path(t)}")
        version = s.get(Version, version_id or node.current_version_id)
        if version is None or version.node_id != node.id:
            raise NotFound(f"no version {version_id} of {self.view_path(t)}")
        return node, version

    # -- writing ---------------------------------------------------------------

    def open_write(self, path, *, truncate: bool = True, size: int | None = None,
                   metered: bool = True) -> Upload:
        """Start a new version of `path`. It appears only when `Upload.commit()` returns.

        With truncate=False the new version starts as a copy of the current one
        (resume, append, writes at offsets past the copied part). `size`: the
        length the caller announces (a PUT's Content-Length), refused at once if
        it cannot fit. Raises TooLarge, NoSpace or QuotaExceeded. `metered`: its
        bytes and duration count in the metrics (not for copies inside the store).
        """
        t = self.target(path)
        with self._op("open-write", t, write=False, audited=False, right="write",
                      fast=True) as (s, client):
            _, node, base = self._place(s, client, t, recall=True)
            if node is not None and node.is_dir:
                raise Conflict(f"is a folder: {self.view_path(t)}")
            quota = None if client.quota_bytes is None else (
                client.quota_bytes - repo.used_bytes(s, client.id) + (base.size if base else 0))
        limits = self._limits(quota, size)
        base_reader = None
        if base is not None and not truncate:
            key = self.app.keyring.data_key(client.wrapped_key, base.wrapped_key)
            base_reader = (self.app.provider.open_blob(base.blob_id, key, base.size, base.holes),
                           base.size)
        wrapped_client_key = client.wrapped_key

        def make_writer():
            """A blob writer under a fresh data key, and that key wrapped for the client."""
            data_key, wrapped, digest_key = self.app.keyring.upload_keys(wrapped_client_key)
            return self.app.provider.create_blob(data_key, digest_key), wrapped

        return Upload(self, t, make_writer, base_reader, limits, metered=metered)

    def _limits(self, quota: int | None, size: int | None) -> Limits:
        """The limits of a new upload; refuses one that cannot fit as announced, or
        any while free space is below the reserve."""
        storage = self.app.config.storage
        total, free = self.app.provider.space()
        limits = Limits(quota, storage.max_file_size, storage.reserve.of(total))
        if size is not None:
            if size > limits.max_size:
                raise TooLarge(f"file too large: at most {human(limits.max_size)} are allowed")
            if limits.quota is not None and size > limits.quota:
                raise QuotaExceeded("the client's quota is exhausted")
        if free - (size or 0) < limits.reserve:
            raise NoSpace("not enough free space on the server")
        return limits

    def _commit_upload(self, t, writer, wrapped_key, mtime) -> "Entry":
        """Called by Upload.commit() once the blob is durable: publish it in one transaction.

        Two uploads creating the same new file race on the unique name index (on
        PostgreSQL); the loser retries and becomes a version of the winner's file.
        """
        for attempt in range(3):
            try:
                return self._publish(t, writer, wrapped_key, mtime)
            except ConcurrentChange:
                if attempt == 2:
                    raise

    def _publish(self, t, writer, wrapped_key, mtime):
        now = time.time()
        with self._op("write", t, write=True, right="write", fast=True) as (s, client):
            parent, node, old = self._place(s, client, t)
            if node is not None and node.is_dir:
                raise Conflict(f"a folder appeared at {self.view_path(t)} during the upload")
            if node is None:  # a transient record of the new row, for the Entry
                node = Node(id=repo.add_file(s, client.id, parent.id, t.rel[-1], now),
                            name=t.rel[-1], is_dir=False)
            version = Version(node_id=node.id, blob_id=writer.blob_id, size=writer.size,
                              digest=writer.digest(), holes=writer.holes(),
                              wrapped_key=wrapped_key,
                              mtime=mtime if mtime is not None else now, created_at=now,
                              author=self.principal.login)
            if not repo.charge(s, client.id, version.size - (old.size if old else 0)):
                raise QuotaExceeded("the client's quota is exhausted")
            repo.make_current(s, node.id, repo.add_version(s, version), now)
            return file_entry(self.view_path(t), node, version)

    def mkdir(self, path):
        t = self.target(path)
        with self._op("mkdir", t, write=True, right="write") as (s, client):
            parent, existing, _ = self._place(s, client, t)
            if existing is not None:
                raise Conflict(f"already exists: {self.view_path(t)}")
            s.add(Node(client_id=client.id, parent_id=parent.id, name=t.rel[-1], is_dir=True))
            parent.modified_at = time.time()

    def remove(self, path, *, recursive: bool = False, dirs: bool = True, files: bool = True):
        """Move a file or folder to the trash (its versions are kept).

        A folder must be empty unless `recursive`. `dirs`/`files` restrict what
        may be removed (SFTP's rmdir and remove are distinct operations).
        """
        t = self.target(path)
        with self._op("delete", t, write=True) as (s, client):
            node = self._node(s, client, t)
            if not t.rel:
                raise Denied("the top folder of a client cannot be removed")
            if node.is_dir and not dirs:
                raise Conflict(f"is a folder: {self.view_path(t)}")
            if not node.is_dir and not files:
                raise Conflict(f"not a folder: {self.view_path(t)}")
            ids = repo.subtree_ids(s, node.id)
            if len(ids) > 1 and not recursive:
                raise Conflict(f"folder is not empty: {self.view_path(t)}")
            repo.add_usage(s, client.id, -repo.live_bytes(s, ids))
            now = time.time()
            node.deleted_at = now
            s.get(Node, node.parent_id).modified_at = now
            if node.is_dir:
                self._drop_grants(s, client, t.rel)

    def _drop_grants(self, s, client, folder: tuple) -> None:
        dropped = drop_grants(s, client.id, folder)
        if dropped:
            self.app.access_changed(s)
            self._audit(s, "acl-drop", paths.join((client.name,) + folder),
                        "grants of the deleted folder: " + "; ".join(dropped))

    def set_mtime(self, path, mtime: float) -> None:
        """Record a client-supplied modification time (files: on the current version)."""
        mtime = checked_mtime(mtime)
        t = self.target(path)
        with self._op("set-mtime", t, write=True, audited=False, right="write",
                      fast=True) as (s, client):
            node = self._node(s, client, t)
            if node.is_dir:
                repo.set_folder_mtime(s, node.id, mtime)
            else:
                repo.set_file_mtime(s, node.id, mtime)

    # -- moving and copying -----------------------------------------------------

    def rename(self, src, dst, *, overwrite: bool = False, replace: bool = False) -> None:
        """Move `src` to `dst`: one metadata update within a client.

        Replacing an existing file keeps it: its versions stay in the history of
        the path, below the moved file's. With `replace` (a WebDAV MOVE), a folder in
        the way is replaced even if it holds files (it goes to the trash, which
        needs the delete right there); without, only an empty one (POSIX rename).
        Between clients the data is re-encrypted under the destination client's key
        (appliance.service.copying: copy, then delete).
        """
        ts, td = self.target(src), self.target(dst)
        if ts.client != td.client:
            self._move_between(src, dst, overwrite)
            return
        with self._op("rename", ts, write=True, right="delete") as (s, client):
            self._client(s, td, "write")
            node = self._node(s, client, ts)
            if not ts.rel:
                raise Denied("the top folder of a client cannot be moved")
            parent, existing, _ = self._place(s, client, td)
            if node.is_dir and td.rel[:len(ts.rel)] == ts.rel:
                raise BadRequest("a folder cannot be moved into itself")
            if td.rel == ts.rel:
                return
            if existing is not None:
                node = self._replace(s, client, node, existing, td, overwrite, replace)
            now = time.time()
            s.get(Node, node.parent_id).modified_at = now
            node.parent_id, node.name, parent.modified_at = parent.id, td.rel[-1], now
            if node.is_dir:
                move_grants(s, client.id, ts.rel, td.rel)
                self.app.access_changed(s)
            self._audit(s, "rename-to", td)

    def _replace(self, s, client, node, existing, td, overwrite, replace) -> Node:
        if not overwrite:
            raise Conflict(f"already exists: {self.view_path(td)}")
        if existing.is_dir and not replace and repo.subtree_ids(s, existing.id)[1:]:
            raise Conflict(f"folder is not empty: {self.view_path(td)}")
        if node.is_dir or existing.is_dir:
            if replace:
                self._decide(s, client, td, "delete")
            repo.add_usage(s, client.id, -repo.live_bytes(s, repo.subtree_ids(s, existing.id)))
            existing.deleted_at = time.time()
            if existing.is_dir:
                self._drop_grants(s, client, td.rel)
            s.flush()
            return node
        # file onto file: the moved file's versions join the replaced file's history
        repo.add_usage(s, client.id, -repo.live_bytes(s, [existing.id]))
        for v in repo.versions_of(s, node.id):
            v.node_id = existing.id
        existing.current_version_id = node.current_version_id
        node.deleted_at = time.time()
        node.current_version_id = None
        s.flush()
        return existing

    # -- versions ----------------------------------------------------------------

    def versions(self, path) -> list[VersionInfo]:
        t = self.target(path)
        with self._op("versions", t, write=False, audited=False, right="read") as (s, client):
            node = self._node(s, client, t)
            if node.is_dir:
                raise Conflict(f"is a folder: {self.view_path(t)}")
            return [VersionInfo(v.id, v.size, v.digest, v.mtime, v.created_at, v.author,
                                v.id == node.current_version_id)
                    for v in repo.versions_of(s, node.id)]

    def restore(self, path, version_id: int) -> None:
        """Make an earlier version current again, as a new version (history only grows)."""
        if not any(v.id == version_id for v in self.versions(path)):
            raise NotFound(f"no version {version_id} of {path}")
        self._copy_file(path, path, version_id)
        with self.app.db.write() as s:
            self._audit(s, "restore", self.target(path), detail=f"version {version_id}")

    def usage(self, path="/") -> tuple[int, int | None]:
        """(bytes used, quota or None) of the client `path` is in."""
        t = self.target(path)
        with self._op("usage", t, write=False, audited=False, right="list") as (s, client):
            if client is None:
                return 0, None
            # fresh, by id: usage changes by the request, and the name this session
            # remembers may be a second old (a client renamed just now)
            row = s.get(Client, client.id)
            if row is None:
                raise NotFound(f"no such client: {client.name}")
            return row.used_bytes, row.quota_bytes

    def space(self, path="/") -> tuple[int, int]:
        """(total, free) bytes as a client should see them: its quota if it has one,
        and never the free space kept back as [storage] reserve."""
        used, quota = self.usage(path)
        total, free = self.app.provider.space()
        free = max(0, free - self.app.config.storage.reserve.of(total))
        if quota is None:
            return total, free
        return quota, max(0, min(quota - used, free))

    def check(self, action: str, path) -> str:
        """'allowed', 'denied' or 'not found': what `action` at `path` would meet,
        decided exactly as the operation itself decides (`strongroom acl check`)."""
        t = self.target(path)
        try:
            with self.app.db.read() as s:
                client = self._client(s, t, action)
                if client is not None and action != "write":
                    self._view_found(s, client, t) if in_view(t.rel) else self._node(s, client, t)
        except Denied:
            return "denied"
        except NotFound:
            return "not found"
        return "allowed"

    def audit_event(self, action: str, path: str | None, outcome="ok", detail=None) -> None:
        """Record an event an adapter observed (a refused shell request, say)."""
        with self.app.db.write() as s:
            self._audit(s, action, path or "", outcome=outcome, detail=detail)
