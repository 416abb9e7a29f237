"""The one service layer every protocol goes through.

A `Session` is one authenticated principal talking over one protocol from one
address. Every operation follows the same spine (appliance.service.spine):
clean and confine the path, decide whether the principal may do it
(appliance.service.access), touch the metadata and the store, write the audit
event. Adapters translate its domain errors and nothing else.

The Session is made of small objects, each with its own state: the spine (with
the access policy and the `@versions`/`@trash` views), and the operations on
uploads, moves, copies, locks and dead properties; its public methods are the
whole interface the adapters use.
"""
from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, SupportsFloat

from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import Client, Node, Version
from strongroom.appliance.errors import Conflict, CorruptData, Denied, NotFound
from strongroom.appliance.notify.outbox import Change
from strongroom.appliance.service import keys_store, locking, saving
from strongroom.appliance.service.access import ClientInfo, hot
from strongroom.appliance.service.copying import Copies
from strongroom.appliance.service.entry import (Entry, VersionInfo, checked_mtime, dir_entry,
                                                entry_for, file_entry)
from strongroom.appliance.service.locking import Lock, SessionLocks
from strongroom.appliance.service.moving import Moves
from strongroom.appliance.service.paths import RawPath, Target
from strongroom.appliance.service.principal import Principal
from strongroom.appliance.service.properties import DeadProperties
from strongroom.appliance.service.spine import Spine
from strongroom.appliance.service.transfer import Origin, ReadHandle, Upload
from strongroom.appliance.service.views import in_view
from strongroom.appliance.service.writing import Writes

if TYPE_CHECKING:
    from prometheus_client import Gauge

    from strongroom.appliance.app import App

__all__ = ["ClientInfo", "Session"]


class Session:
    def __init__(self, app: "App", principal: Principal, protocol: str,
                 address: str | None = None, *, per_request: bool = False):
        """`per_request`: the session lives for one request (WebDAV), so stat results
        may be remembered until its next write; a long-lived session (SFTP) must
        see other sessions' changes and remembers nothing."""
        self.app = app
        self.principal = principal
        self.protocol = protocol
        self.address = address
        self._spine = spine = Spine(app, principal, protocol, address, per_request=per_request)
        self._writes = Writes(self, spine)
        self._copies = Copies(self, spine)
        self._moves = Moves(spine, self._copies)
        self._locks = SessionLocks(spine)
        self._props = DeadProperties(spine)
        # A long-lived session counts as active until close() (appliance.metrics).
        self._active: "Gauge | None" = None
        if not per_request and app.metrics is not None:
            self._active = app.metrics.sessions.labels(protocol)
            self._active.inc()

    def close(self) -> None:
        """The session's connection ended. Safe to call twice."""
        active, self._active = self._active, None
        if active is not None:
            active.dec()

    # -- the principal's view ---------------------------------------------------------

    def target(self, path: RawPath) -> Target:
        """Clean `path` and place it in this principal's view (a paths.Target)."""
        return self._spine.target(path)

    def view_path(self, t: Target) -> str:
        return self._spine.view_path(t)

    def view_of(self, canonical: str) -> str | None:
        """The path in this principal's view of a canonical '/<client>/...' path, or None."""
        return self._spine.view_of(canonical)

    def own_tree(self) -> str:
        """The current name of a client user's own tree (see Spine.own_tree)."""
        return self._spine.own_tree()

    def libraries(self) -> frozenset[str]:
        """Names of the shared libraries this principal sees (top-level folders)."""
        return self._spine.policy.libraries()

    # -- reading the tree --------------------------------------------------------
    def stat(self, path: RawPath) -> Entry:
        return self._spine.remembered_stat(path, self._stat)

    def _stat(self, path: RawPath) -> Entry:
        t = self.target(path)
        if t.is_view_root:
            return dir_entry("/", "")
        if in_view(t.rel):
            with self._spine.transaction("stat", t, write=False, audited=False,
                                         right="list") as (s, tree):
                return self._spine.views.stat(s, tree, t)
        with self._spine.transaction("stat", t, write=False, audited=False, right="list",
                                     fast=True) as (db, client):
            node, version = self._spine.lookup(db, client, t)
            self._spine.policy.require_readable_file(db, client, t.rel, node,
                                                       self.view_path(t))
            if node is not None and node.name:
                return entry_for(self.view_path(t), node, version)
            if node is not None:
                return dir_entry(self.view_path(t), t.prefix[-1] if t.prefix else "", node)
        # Raised after a clean end of the transaction: a rollback would expire the
        # rows _lookup remembered.
        raise NotFound(f"no such file or folder: {self.view_path(t)}")

    def list(self, path: RawPath) -> list[Entry]:
        t = self.target(path)
        if t.is_view_root:   # the staff root: the trees this principal sees
            with self.app.db.read() as s:
                return [dir_entry(f"/{c.name}", c.name, repo.root_node(s, c.id))
                        for c in self._spine.policy.visible_trees(s)]
        with self._spine.transaction("list", t, write=False, audited=False) as (db, client):
            if in_view(t.rel):
                return self._spine.views.list(db, client, t)
            node = self._spine.node(db, client, t)
            if not node.is_dir:
                raise Conflict(f"not a folder: {self.view_path(t)}")
            base = self.view_path(t).rstrip("/")
            everything = self._spine.policy.reads_all(db, client, t.rel)
            entries = [entry_for(f"{base}/{n.name}", n, v)
                       for n, v in repo.children_with_versions(db, node.id)
                       if everything or self._spine.policy.visible(db, client, t.rel + (n.name,),
                                                                      n.is_dir)]
            if t.rel:
                return entries
            entries[:0] = self._spine.views.root_entries(db, client, t)
            if t.prefix or self.principal.sees_all_clients:
                return entries
            libraries = self.libraries()
            return [e for e in entries if e.name not in libraries] + sorted(
                self._library_entries(db, libraries), key=lambda e: e.name)

    def _library_entries(self, db: OrmSession, names: Iterable[str]) -> Iterator[Entry]:
        for name in names:
            row = repo.client_by_name(db, name)
            if row is not None:
                yield dir_entry(f"/{name}", name, repo.root_node(db, row.id))

    def open_read(self, path: RawPath, version_id: int | None = None, *,
                  metered: bool = True) -> ReadHandle:
        """`metered`: the bytes read count as sent to the client (not for copies)."""
        t = self.target(path)
        with self._spine.transaction("read", t, write=True, right="read") as (db, client):
            node, version = self._readable(db, client, t, version_id)
            key = keys_store.data_key(hot(db), self.app.keyring, client.id, version.id,
                                      version.client_key_id, version.wrapped_key)
            origin = Origin(client.name, t.canonical, version.id, version.blob_id)
            try:
                reader = self.app.provider.open_blob(version.blob_id, key, version.size,
                                                     version.holes)
            except CorruptData as e:
                origin.corrupt(e)
                raise
            metrics = self.app.metrics if metered else None
            meter = None if metrics is None else metrics.meter(self.protocol, "down")
            entry = (self._spine.views.stat(db, client, t) if in_view(t.rel)
                     else file_entry(self.view_path(t), node, version))
            return ReadHandle(entry, reader, origin, meter)

    def _readable(self, db: OrmSession, client: ClientInfo, t: Target,
                  version_id: int | None) -> tuple[Node, Version]:
        if in_view(t.rel):
            shown = self._spine.views.content(db, client, t)
            if version_id is not None and shown[1].id != version_id:
                raise NotFound(f"no version {version_id} at {self.view_path(t)}")
            return shown
        node = self._spine.node(db, client, t)
        if node.is_dir:
            raise Conflict(f"is a folder: {self.view_path(t)}")
        version = db.get(Version, version_id or node.current_version_id)
        if version is None or version.node_id != node.id:
            raise NotFound(f"no version {version_id} of {self.view_path(t)}")
        return node, version

    # -- writing ---------------------------------------------------------------

    def open_write(self, path: RawPath, *, truncate: bool = True, size: int | None = None,
                   metered: bool = True) -> Upload:
        """Start a new version of `path`. It appears only when `Upload.commit()` returns.

        With truncate=False the new version starts as a copy of the current one
        (resume, append, writes at offsets past the copied part). `size`: the
        length the caller announces (a PUT's Content-Length), refused at once if
        it cannot fit. Raises TooLarge, NoSpace or QuotaExceeded. `metered`: its
        bytes and duration count in the metrics (not for copies inside the store).
        """
        return self._writes.open_write(path, truncate=truncate, size=size, metered=metered)

    def mkdir(self, path: RawPath) -> None:
        t = self.target(path)
        with self._spine.transaction("mkdir", t, write=True, right="write") as (db, client):
            parent, existing, _ = self._spine.place(db, client, t)
            if existing is not None:
                raise Conflict(f"already exists: {self.view_path(t)}")
            locking.check_unlocked(hot(db), self._spine, t, new=True)
            db.add(Node(client_id=client.id, parent_id=parent.id, name=t.rel[-1], is_dir=True))
            parent.modified_at = time.time()

    def remove(self, path: RawPath, *, recursive: bool = False, dirs: bool = True,
               files: bool = True) -> None:
        """Move a file or folder to the trash (its versions are kept).

        A folder must be empty unless `recursive`. `dirs`/`files` restrict what
        may be removed (SFTP's rmdir and remove are distinct operations).
        """
        self._spine.retried(lambda: self._remove(path, recursive, dirs, files))

    def _remove(self, path: RawPath, recursive: bool, dirs: bool, files: bool) -> None:
        t = self.target(path)
        with self._spine.transaction("delete", t, write=True) as (db, client):
            node = self._spine.node(db, client, t)
            if not t.rel:
                raise Denied("the top folder of a client cannot be removed")
            if node.is_dir and not dirs:
                raise Conflict(f"is a folder: {self.view_path(t)}")
            if not node.is_dir and not files:
                raise Conflict(f"not a folder: {self.view_path(t)}")
            ids = repo.subtree_ids(db, node.id)
            if len(ids) > 1 and not recursive:
                raise Conflict(f"folder is not empty: {self.view_path(t)}")
            locking.check_unlocked(hot(db), self._spine, t, new=True, tree=True)
            locking.end(db, self._spine, t)
            repo.add_usage(hot(db), client.id, -repo.live_bytes(db, ids))
            now = time.time()
            node.deleted_at = now
            self._spine.notify(db, Change(client.id, node.id, t.rel, "deleted",
                                          is_dir=node.is_dir))
            # a save's stand-in joins the saved file's history instead of the trash
            saving.fold_on_delete(db, self.principal.login, self.app.config.notify.ignore,
                                  node, t.canonical, now)
            parent = db.get(Node, node.parent_id) if node.parent_id is not None else None
            if parent is not None:   # (a tree's top folder is never removed: see above)
                parent.modified_at = now
            if node.is_dir:
                self._spine.drop_grants(db, client, t.rel)

    def set_mtime(self, path: RawPath, mtime: SupportsFloat | str | bytes) -> None:
        """Record a client-supplied modification time (files: on the current version)."""
        mtime = checked_mtime(mtime)
        t = self.target(path)
        with self._spine.transaction("set-mtime", t, write=True, audited=False,
                                     right="write", fast=True) as (db, client):
            node = self._spine.node_row(db, client, t)
            if node.is_dir:
                repo.set_folder_mtime(db, node.id, mtime)
            else:
                repo.set_file_mtime(db, node.id, mtime)

    # -- moving and copying -----------------------------------------------------

    def rename(self, src: RawPath, dst: RawPath, *, overwrite: bool = False,
               replace: bool = False) -> None:
        """Move `src` to `dst`: one metadata update within a client.

        Replacing an existing file keeps it: its versions stay in the history of
        the path, below the moved file's. With `replace` (a WebDAV MOVE), a folder in
        the way is replaced even if it holds files (it goes to the trash, which
        needs the delete right there); without, only an empty one (POSIX rename).
        Between clients the data is re-encrypted under the destination client's key
        (appliance.service.copying: copy, then delete).
        """
        self._moves.rename(src, dst, overwrite=overwrite, replace=replace)

    def copy(self, src: RawPath, dst: RawPath, *, overwrite: bool = False) -> None:
        """Copy a file (as a new version at `dst`) or a folder tree. Data is re-encrypted."""
        self._copies.copy(src, dst, overwrite=overwrite)

    # -- versions ----------------------------------------------------------------

    def versions(self, path: RawPath) -> builtins.list[VersionInfo]:
        t = self.target(path)
        with self._spine.transaction("versions", t, write=False, audited=False,
                                     right="read") as (db, client):
            node = self._spine.node(db, client, t)
            if node.is_dir:
                raise Conflict(f"is a folder: {self.view_path(t)}")
            return [VersionInfo(v.id, v.size, v.digest, v.mtime, v.created_at, v.author,
                                v.id == node.current_version_id, bool(v.pinned))
                    for v in repo.versions_of(db, node.id)]

    def restore(self, path: RawPath, version_id: int) -> None:
        """Make an earlier version current again, as a new version (history only grows)."""
        if not any(v.id == version_id for v in self.versions(path)):
            raise NotFound(f"no version {version_id} of {path!s}")
        self._copies.copy_file(path, path, version_id)
        with self.app.db.write() as db:
            self._spine.audit(db, "restore", self.target(path), detail=f"version {version_id}")

    def usage(self, path: RawPath = "/") -> tuple[int, int | None]:
        """(bytes used, quota or None) of the client `path` is in."""
        t = self.target(path)
        if t.is_view_root:
            return 0, None
        with self._spine.transaction("usage", t, write=False, audited=False,
                                     right="list") as (db, client):
            # fresh, by id: usage changes by the request, and the name this session
            # remembers may be a second old (a client renamed just now)
            row = db.get(Client, client.id)
            if row is None:
                raise NotFound(f"no such client: {client.name}")
            return row.used_bytes, row.quota_bytes

    def space(self, path: RawPath = "/") -> tuple[int, int]:
        """(total, free) bytes as a client should see them: its quota if it has one,
        and never the free space kept back as [storage] reserve."""
        used, quota = self.usage(path)
        total, free = self.app.provider.space()
        free = max(0, free - self.app.config.storage.reserve.of(total))
        if quota is None:
            return total, free
        return quota, max(0, min(quota - used, free))

    def check(self, action: str, path: RawPath) -> str:
        """'allowed', 'denied' or 'not found': what `action` at `path` would meet,
        decided exactly as the operation itself decides (`strongroom acl check`)."""
        t = self.target(path)
        try:
            with self.app.db.read() as db:
                client = self._spine.client(db, t, action)
                if client is not None and action != "write" and in_view(t.rel):
                    self._spine.views.found(db, client, t)
                elif client is not None and action != "write":
                    self._spine.node(db, client, t)
        except Denied:
            return "denied"
        except NotFound:
            return "not found"
        return "allowed"

    def may(self, action: str, path: RawPath) -> bool:
        """Whether `action` ("list", "read", ...) at `path` would be allowed, by the
        rights alone: the file or folder need not exist (any more). Unaudited: for
        deciding who may hear of a name (appliance.notify.digests)."""
        return self._spine.may(action, self.target(path))

    def audit_event(self, action: str, path: str | None, outcome: str = "ok",
                    detail: str | None = None) -> None:
        """Record an event an adapter observed (a refused shell request, say)."""
        self._spine.record(action, path or "", outcome=outcome, detail=detail)

    # -- WebDAV locks: taking a lock needs the write right on its root, refreshing one
    # needs to own it, releasing one needs to own it or the delete right where it is;
    # each is audited (appliance.service.locking) -----------------------------------

    def lock(self, path: RawPath, lock: Lock) -> Lock:
        """Store `lock` (wsgidav's fields; its timeout is capped) on `path`; return the
        stored lock in this caller's view."""
        return self._locks.lock(path, lock)

    def refresh_lock(self, token: str, timeout: float | None) -> Lock:
        """A lock of this principal with a new timeout (capped); NotFound otherwise."""
        return self._locks.refresh(token, timeout)

    def unlock(self, token: str) -> bool:
        """Release a lock; False if there is none by that token."""
        return self._locks.unlock(token)

    def lock_of(self, token: str) -> Lock | None:
        return self._locks.lock_of(token)

    def locks_below(self, path: RawPath) -> builtins.list[Lock]:
        """The live locks at or below `path`, in this caller's view (one query)."""
        return self._locks.below(path)

    # -- dead properties (appliance.service.properties) ------------------------------

    def dead_properties(self, path: RawPath) -> dict[str, str]:
        return self._props.get(path)

    def dead_properties_of_members(self, folder: RawPath) -> dict[str, dict[str, str]]:
        """The dead properties of every member of `folder` that has some and that the
        principal may read, by name, in one query (a Depth-1 PROPFIND asks for each
        member's); members left out may have none or may be refused: ask for them alone."""
        return self._props.of_members(folder)

    def set_dead_property(self, path: RawPath, name: str, value: str | None) -> None:
        """Set `name` to `value`, or remove it when value is None."""
        self._props.set(path, name, value)

    def copy_dead_properties(self, src: RawPath, dst: RawPath) -> None:
        self._props.copy(src, dst)
