"""How editors save over a file, and what that does to its version history.

Office, LibreOffice, vim, gedit and the operating systems under them seldom write
a document in place. They write the new content under a temporary name and move
it onto the document's name, often after moving the original away; and they
leave litter beside it (owner files, lock files, `.DS_Store`). Three rules keep
one history per document and none for litter:

1. **Litter keeps no history.** Committing a new version of a file whose name is
   in `[notify] ignore` drops its older versions: their rows in the commit's own
   transaction, their blobs once it has committed (`drop_older`). Deleting such a
   file still moves it to the trash, like any file.
2. **A file renamed onto another** keeps the other's history, the moved file's
   versions below it (appliance.service.moving, `Moves._replace`).
3. **A file saved by moving the original away** (Word: MOVE doc → ~WRL0001.tmp,
   MOVE ~WRD0000.tmp → doc, DELETE ~WRL0001.tmp; vim: rename file → file~, write
   file, remove file~) keeps the original's history, when all of these hold:
   - the same login renamed the original away from that name, within the same
     folder, at most WINDOW seconds before (the rename's audit event says so:
     `rename_detail`);
   - the original is a file and is still in that folder under a *stand-in* name
     (`stand_in`: an ignored name, or the backup name `NAME~`), or was deleted
     since;
   - a different file now takes the name: uploaded anew or renamed onto it.
   Then the new file's history starts with the original's (`continue_history`):
   all of it if the original was deleted (it leaves the trash, whose item would
   be a copy of the history), all but the original's current version if the
   original is still there (that one stays as the stand-in's content, for the
   editor that reads or deletes it next). When the stand-in is then deleted
   within the window, its version joins the history too and no trash item is
   left (`fold_on_delete`). Nothing else is merged: a file renamed to a name of
   its own and kept stays a file of its own, and a deleted file whose name was
   merely reused is not joined.
"""
import re
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.hotpath import HotPath
from strongroom.appliance.db.models import AuditEvent, Base, Node, Version
from strongroom.appliance.notify.ignore import ignored
from strongroom.appliance.service.access import hot

# How long after renaming the original away a save may still take its history:
# the upload of the new content runs in between (vim over SFTP).
WINDOW = 120.0
# How many of the newest audit events are looked at (a bound on the scan: the
# rename is among the last few events of a save).
SCAN = 5000

_NODES: Table = Base.metadata.tables[Node.__tablename__]
_VERSIONS: Table = Base.metadata.tables[Version.__tablename__]
_EVENTS: Table = Base.metadata.tables[AuditEvent.__tablename__]

# Core statements (module constants: the hot path compiles each once).
_OLDER_BLOBS = select(_VERSIONS.c.blob_id).where(_VERSIONS.c.node_id == bindparam("node_id"),
                                                 _VERSIONS.c.id != bindparam("keep"))
_DROP_OLDER = _VERSIONS.delete().where(_VERSIONS.c.node_id == bindparam("node_id"),
                                       _VERSIONS.c.id != bindparam("keep"))
_MOVE_VERSIONS = (_VERSIONS.update()
                  .where(_VERSIONS.c.node_id == bindparam("from_id"),
                         _VERSIONS.c.id != bindparam("keep"))
                  .values(node_id=bindparam("to_id")))
_FORGET_CURRENT = (_NODES.update().where(_NODES.c.id == bindparam("node_id"))
                   .values(current_version_id=None))
_NODE = select(_NODES.c.parent_id, _NODES.c.name, _NODES.c.is_dir,
               _NODES.c.current_version_id, _NODES.c.deleted_at).where(
    _NODES.c.id == bindparam("node_id"))
_LIVE_CHILD = select(_NODES.c.id, _NODES.c.is_dir).where(
    _NODES.c.parent_id == bindparam("parent_id"), _NODES.c.name == bindparam("name"),
    _NODES.c.deleted_at.is_(None))
_RECENT_RENAMES = (select(_EVENTS.c.detail)
                   .where(_EVENTS.c.id > select(func.max(_EVENTS.c.id)).scalar_subquery()
                          - bindparam("scan"),
                          _EVENTS.c.action == "rename-to", _EVENTS.c.outcome == "ok",
                          _EVENTS.c.actor == bindparam("actor"),
                          _EVENTS.c.ts >= bindparam("since"))
                   .order_by(_EVENTS.c.id.desc()))
_DETAIL = re.compile(r"node=(\d+) from=(/.*)", re.DOTALL)


class Renamed(NamedTuple):
    """A rename's audit event: node `node_id` left canonical path `source`."""
    node_id: int
    source: str


def rename_detail(node_id: int, source: str) -> str:
    """The detail of a `rename-to` event: which node came from which canonical path."""
    return f"node={node_id} from={source}"


def stand_in(name: str, original: str, patterns: Iterable[str]) -> bool:
    """Whether `name` is where a save parks the file called `original`: editor or OS
    litter (`patterns`), or its backup `original~` (vim's, emacs')."""
    return name == original + "~" or ignored(name, patterns)


def drop_older(db: HotPath, node_id: int, keep: int) -> list[str]:
    """Delete every version of `node_id` but `keep`; returns their blob ids, which
    the caller deletes after its transaction commits (never before: until then
    the rows still refer to them)."""
    params = {"node_id": node_id, "keep": keep}
    blobs = [row[0] for row in db.execute(_OLDER_BLOBS, params).all()]
    if blobs:
        db.execute(_DROP_OLDER, params)
    return blobs


def _renames(db: HotPath, actor: str, now: float) -> list[Renamed]:
    """The renames `actor` made within WINDOW seconds of `now`, newest first."""
    rows = db.execute(_RECENT_RENAMES, {"scan": SCAN, "actor": actor,
                                        "since": now - WINDOW}).all()
    found = (_DETAIL.fullmatch(row[0] or "") for row in rows)
    return [Renamed(int(m[1]), m[2]) for m in found if m]


def _parent_and_name(canonical: str) -> tuple[str, str]:
    parent, _, name = canonical.rpartition("/")
    return parent, name


def continue_history(db: HotPath, actor: str, patterns: Iterable[str], node_id: int,
                     parent_id: int, canonical: str, now: float) -> int | None:
    """File `node_id` just took the free name `canonical` in folder `parent_id`:
    give it the history of the file saved away from there (rule 3 of the module
    docstring). Returns that file's node id, or None if nothing was joined."""
    folder, name = _parent_and_name(canonical)
    if ignored(name, patterns):
        return None                      # litter keeps no history anyway
    left = next((r for r in _renames(db, actor, now) if r.source == canonical), None)
    if left is None or left.node_id == node_id:
        return None
    row = db.execute(_NODE, {"node_id": left.node_id}).first()
    if row is None:
        return None
    original_parent, original_name, is_dir, current, deleted_at = row
    if is_dir or original_parent != parent_id or current is None:
        return None
    if deleted_at is None and not stand_in(original_name, name, patterns):
        return None
    keep = current if deleted_at is None else -1   # -1: no version has that id
    db.execute(_MOVE_VERSIONS, {"from_id": left.node_id, "to_id": node_id, "keep": keep})
    if deleted_at is not None:
        db.execute(_FORGET_CURRENT, {"node_id": left.node_id})
    return left.node_id


def fold_on_delete(db: OrmSession, actor: str, patterns: Iterable[str], node: Node,
                   canonical: str, now: float) -> int | None:
    """Live file `node` at `canonical` is being deleted: if it is the stand-in of a
    save (rule 3), its versions join the file that took its old name, and it
    leaves no trash item. Returns that file's node id, or None."""
    if node.is_dir or node.current_version_id is None:
        return None
    conn = hot(db)
    left = next((r for r in _renames(conn, actor, now) if r.node_id == node.id), None)
    if left is None:
        return None
    folder, name = _parent_and_name(left.source)
    if folder != _parent_and_name(canonical)[0] or not stand_in(node.name, name, patterns):
        return None
    successor = conn.execute(_LIVE_CHILD, {"parent_id": node.parent_id, "name": name}).first()
    if successor is None or successor[1] or successor[0] == node.id:
        return None
    conn.execute(_MOVE_VERSIONS, {"from_id": node.id, "to_id": successor[0], "keep": -1})
    node.current_version_id = None
    return int(successor[0])
