"""Renames and moves for the Session: one metadata update within a client (a
move between clients is a copy under the other client's key, then a delete:
appliance.service.copying)."""
import time
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import Node
from strongroom.appliance.errors import BadRequest, Conflict, Denied
from strongroom.appliance.notify.outbox import Change
from strongroom.appliance.service.access import ClientInfo, hot
from strongroom.appliance.service import locking, saving
from strongroom.appliance.service.grants import move_grants
from strongroom.appliance.service.paths import RawPath, Target
from strongroom.appliance.service.spine import Spine

if TYPE_CHECKING:
    from strongroom.appliance.service.copying import Copies


class Moves:
    """Renames of one Session's principal, through its spine; a move between
    clients goes to `copies` (a Copies of the same Session)."""

    def __init__(self, spine: Spine, copies: "Copies"):
        self._spine, self._copies = spine, copies

    def rename(self, src: RawPath, dst: RawPath, *, overwrite: bool, replace: bool) -> None:
        """See Session.rename."""
        spine = self._spine
        ts, td = spine.target(src), spine.target(dst)
        if ts.client != td.client:
            self._copies.move_between(src, dst, overwrite)
            return
        spine.retried(lambda: self._rename(ts, td, overwrite, replace))

    def _rename(self, ts: Target, td: Target, overwrite: bool, replace: bool) -> None:
        """A rename within one client, in one transaction. What it moves is read
        after the transaction has locked the client's tree (Spine.client), so an
        upload that committed just before is moved with the rest."""
        spine = self._spine
        with spine.transaction("rename", ts, write=True, right="delete") as (db, client):
            spine.client(db, td, "write")
            node = spine.node(db, client, ts)
            if not ts.rel:
                raise Denied("the top folder of a client cannot be moved")
            parent, existing, _ = spine.place(db, client, td)
            if node.is_dir and td.rel[:len(ts.rel)] == ts.rel:
                raise BadRequest("a folder cannot be moved into itself")
            if td.rel == ts.rel:
                return
            locking.check_unlocked(hot(db), spine, ts, new=True, tree=True)
            locking.check_unlocked(hot(db), spine, td, new=existing is None, tree=True)
            moved = node.id
            if existing is not None:
                node = self._replace(db, client, node, existing, td, overwrite, replace)
            now = time.time()
            old_parent = db.get(Node, node.parent_id) if node.parent_id is not None else None
            if old_parent is not None:   # (a tree's top folder is never moved: see above)
                old_parent.modified_at = now
            node.parent_id, node.name, parent.modified_at = parent.id, td.rel[-1], now
            locking.follow(db, spine, ts, td, replaced=existing is not None and node.id == moved)
            if node.is_dir:
                move_grants(db, client.id, ts.rel, td.rel)
                spine.app.access_changed(db)
            elif existing is None:
                saving.continue_history(hot(db), spine.principal.login,
                                        spine.app.config.notify.ignore, node.id, parent.id,
                                        td.canonical, now)
            # which file now holds what was at the source: appliance.service.saving
            # reads it back
            spine.audit(db, "rename-to", td, detail=saving.rename_detail(node.id, ts.canonical))
            spine.notify(db, Change(client.id, moved, td.rel, "renamed", is_dir=node.is_dir,
                                    old=ts.rel, replaced=None if node.id == moved else node.id))

    def _replace(self, db: OrmSession, client: ClientInfo, node: Node, existing: Node,
                 td: Target, overwrite: bool, replace: bool) -> Node:
        spine = self._spine
        if not overwrite:
            raise Conflict(f"already exists: {spine.view_path(td)}")
        if existing.is_dir and not replace and repo.subtree_ids(db, existing.id)[1:]:
            raise Conflict(f"folder is not empty: {spine.view_path(td)}")
        if node.is_dir or existing.is_dir:
            if replace:
                spine.decide(db, client, td, "delete")
            repo.add_usage(hot(db), client.id,
                           -repo.live_bytes(db, repo.subtree_ids(db, existing.id)))
            existing.deleted_at = time.time()
            if existing.is_dir:
                spine.drop_grants(db, client, td.rel)
            db.flush()
            return node
        # file onto file: the moved file's versions join the replaced file's history
        repo.add_usage(hot(db), client.id, -repo.live_bytes(db, [existing.id]))
        for v in repo.versions_of(db, node.id):
            v.node_id = existing.id
        existing.current_version_id = node.current_version_id
        node.deleted_at = time.time()
        node.current_version_id = None
        db.flush()
        return existing
