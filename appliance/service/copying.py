"""Copies, and moves between clients (a copy under the other client's key, then a
delete), for the Session.

A copy that is refused changes nothing: it is checked first against the rights,
the destination's quota, the largest file allowed and the free-space reserve; if
it fails anyway halfway, what it made is removed for good (it never existed for
anyone, so it does not go to the trash); and a folder it replaces is replaced
only once the copy is complete (copied beside it under a temporary name, then
swapped in one step). A file copied onto a file becomes a new version of it, as
an upload would.
"""
import secrets
from typing import TYPE_CHECKING

from sqlalchemy import Table, select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import DeadProperty, Node, Version
from strongroom.appliance.errors import (BadRequest, Conflict, Denied, NoSpace, NotFound,
                                         QuotaExceeded, TooLarge)
from strongroom.appliance.service import paths
from strongroom.appliance.service.access import ClientInfo, hot
from strongroom.appliance.service.entry import Entry
from strongroom.appliance.service.paths import RawPath, Target
from strongroom.appliance.service.spine import Spine
from strongroom.appliance.service.transfer import COPY_BLOCK, human
from strongroom.appliance.service.views import in_view

if TYPE_CHECKING:
    from strongroom.appliance.service.service import Session


class Copies:
    """Copies of one Session's principal: made of the Session's own operations
    (stat, list, mkdir, open_read, open_write, rename, remove), so each step is
    decided and audited as that operation; checked first through its spine."""

    def __init__(self, session: "Session", spine: Spine):
        self._session, self._spine = session, spine
        self._app = spine.app

    def copy(self, src: RawPath, dst: RawPath, *, overwrite: bool) -> None:
        """See Session.copy."""
        src_entry = self._session.stat(src)
        try:
            dst_entry = self._session.stat(dst)
        except NotFound:
            dst_entry = None
        if dst_entry is not None and not overwrite:
            raise Conflict(f"already exists: {dst_entry.path}")
        self._check_fits(src, dst, src_entry, dst_entry)
        if dst_entry is not None and (dst_entry.is_dir or src_entry.is_dir):
            temp = self._beside(dst)
            self._copy_or_discard(src, temp, src_entry)
            try:
                self._session.rename(temp, dst, overwrite=True, replace=True)
            except BaseException:
                self._discard(temp)
                raise
            return
        self._copy_or_discard(src, dst, src_entry, made=dst_entry is None)

    def move_between(self, src: RawPath, dst: RawPath, overwrite: bool) -> None:
        """A move between clients: decided first, then a copy, then a delete."""
        spine = self._spine
        ts, td = spine.target(src), spine.target(dst)
        with spine.transaction("rename", ts, write=False, audited=False,
                               right="delete") as (db, client):
            spine.node(db, client, ts)
            if not ts.rel:
                raise Denied("the top folder of a client cannot be moved")
        with spine.transaction("rename-to", td, write=False, audited=False, right="write"):
            pass
        self.copy(src, dst, overwrite=overwrite)
        self._session.remove(src, recursive=True)

    # -- what a copy needs -----------------------------------------------------------------

    def _check_fits(self, src: RawPath, dst: RawPath, src_entry: Entry,
                    dst_entry: Entry | None) -> None:
        """Refuse, before anything is written, a copy the destination cannot take."""
        spine = self._spine
        ts, td = spine.target(src), spine.target(dst)
        right = "list" if src_entry.is_dir else "read"
        with spine.transaction("copy", ts, write=False, audited=False,
                               right=right) as (db, client):
            total, largest = self._sizes(db, client, ts)
        replaced = dst_entry.size if dst_entry is not None and not dst_entry.is_dir else 0
        storage = self._app.config.storage
        if largest > storage.max_file_size:
            raise TooLarge(f"file too large: at most {human(storage.max_file_size)} are allowed")
        with spine.transaction("copy-to", td, write=False, audited=False,
                               right="write") as (db, client):
            if client.quota_bytes is not None and \
                    repo.used_bytes(hot(db), client.id) - replaced + total > client.quota_bytes:
                raise QuotaExceeded("the client's quota is exhausted")
        disk, free = self._app.provider.space()
        if free - total < storage.reserve.of(disk):
            raise NoSpace("not enough free space on the server")

    def _sizes(self, db: OrmSession, client: ClientInfo, t: Target) -> tuple[int, int]:
        """(bytes, largest file) of what `t` holds: a live file or folder, or one in a view."""
        if in_view(t.rel):
            hit = self._spine.views.found(db, client, t)
            if hit.version is not None:
                return hit.version.size, hit.version.size
            node = hit.node
        else:
            node = self._spine.node(db, client, t)
        return repo.live_sizes(db, repo.subtree_ids(db, node.id))

    def _beside(self, dst: RawPath) -> str:
        """A name next to `dst` that nothing has, for a copy that will replace it."""
        parent, _, name = paths.join(paths.clean(dst)).rpartition("/")
        return f"{parent}/.{name[:200]}.strongroom-{secrets.token_hex(4)}"

    # -- copying ---------------------------------------------------------------------------

    def _copy_or_discard(self, src: RawPath, dst: RawPath, src_entry: Entry, *,
                         made: bool = True) -> None:
        """Copy; if it fails and `made` (nothing was at `dst` before), remove what it made."""
        try:
            self._copy_tree(src, dst, src_entry)
        except BaseException:
            if made:
                self._discard(dst)
            raise

    def _copy_tree(self, src: RawPath, dst: RawPath, src_entry: Entry) -> None:
        if not src_entry.is_dir:
            self.copy_file(src, dst)
            return
        ts, td = self._spine.target(src), self._spine.target(dst)
        if ts.client == td.client and td.rel[:len(ts.rel)] == ts.rel:
            raise BadRequest("a folder cannot be copied into itself")
        self._session.mkdir(dst)
        for child in self._session.list(src):
            # a deleted folder is copied as it was, without what was deleted from it before
            if src_entry.deleted and child.deleted_at is not None:
                continue
            self._copy_tree(f"{_text(src)}/{child.name}", f"{_text(dst)}/{child.name}", child)

    def copy_file(self, src: RawPath, dst: RawPath, version_id: int | None = None) -> None:
        """Copy one version as a new version of `dst`; its holes stay holes."""
        # metered=False: a copy inside the store moves no bytes to or from a client
        reader = self._session.open_read(src, version_id, metered=False)
        try:
            upload = self._session.open_write(dst, metered=False)   # no size: holes take no space
            try:
                for start, end in reader.data_ranges():
                    for block in reader.iter_range(start, end, COPY_BLOCK):
                        upload.write(start, block)
                        start += len(block)
                upload.mtime = reader.entry.mtime
                upload.commit()
            finally:
                upload.abort()
        finally:
            reader.close()

    def _discard(self, path: RawPath) -> None:
        """Remove for good what a failed copy made at `path` (its rows and blobs): it
        was never there for anyone, so it does not go to the trash."""
        self._spine.retried(lambda: self._discarded(path))

    def _discarded(self, path: RawPath) -> None:
        t = self._spine.target(path)
        with self._spine.transaction("discard", t, write=True, right="write") as (db, client):
            node = repo.walk(db, client.id, t.rel) if t.rel else None
            if node is None:
                return
            ids = repo.subtree_ids(db, node.id)
            repo.add_usage(hot(db), client.id, -repo.live_bytes(db, ids))
            blobs = list(db.scalars(select(Version.blob_id).where(Version.node_id.in_(ids))))
            db.execute(_table(DeadProperty).delete().where(DeadProperty.node_id.in_(ids)))
            db.execute(_table(Version).delete().where(Version.node_id.in_(ids)))
            for node_id in reversed(ids):      # children before their folders
                db.execute(_table(Node).delete().where(Node.id == node_id))
        for blob_id in blobs:
            self._app.provider.delete_blob(blob_id)


def _text(path: RawPath) -> str:
    """`path` cleaned, as text without a trailing '/' (the top folder: '')."""
    return paths.join(paths.clean(path)).rstrip("/")


def _table(model: type[DeadProperty | Version | Node]) -> Table:
    """A model's table, for Core DELETEs that skip the ORM's bookkeeping of loaded rows."""
    table = model.__table__
    assert isinstance(table, Table)  # declared as a FromClause; a mapped class has a Table
    return table
