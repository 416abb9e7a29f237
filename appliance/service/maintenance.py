"""Maintenance: retention, trash expiry, the history budget and the removal of blobs
no row refers to, for every client and library, one run at a time
(appliance.service.maintenance_lease). What goes is decided by
appliance.service.maintenance_plan from the rows, at the injected time `now`.

Each client's removals are ONE transaction, which also records their audit events
(purge-version: one per version, its file's path and id; purge-trash: one per
trash item, with the ids of the versions that went with it). The blobs of the
removed versions are deleted only after it has committed; their ids are first
written to a journal file (data dir, `maintenance/`), so that a process killed
between the commit and the deletions leaves no blob behind: the next run deletes
those of a journal that no version names (a journal whose transaction never
committed names blobs its rows still hold, and those stay). Orphan blobs (no row
names them) go as `strongroom doctor --repair` removes them (admin_doctor),
audited as purge-blob.

A dry run decides the same in a read transaction and changes nothing.
"""
import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import DeadProperty, Node, Version
from strongroom.appliance.errors import BadRequest
from strongroom.appliance.service import consistency, maintenance_plan as planning
from strongroom.appliance.service.access import hot
from strongroom.appliance.service.admin_base import Json
from strongroom.appliance.service.admin_doctor import DoctorMixin, referenced
from strongroom.appliance.service.maintenance_lease import Lease
from strongroom.appliance.service.meter import NO_METER, Meter
from strongroom.appliance.service.retention_rules import Policy, policy
from strongroom.providers.fsutil import fsync_dir

if TYPE_CHECKING:
    from strongroom.appliance.app import App

log = logging.getLogger("strongroom.maintenance")

ACTOR = "maintenance"
# Blobs unchanged for less than this may belong to an upload committing now
# (as `doctor --repair`'s default).
ORPHAN_MIN_AGE = 600.0
_IN_BATCH = 500


class MaintenanceMixin(DoctorMixin):
    def maintenance(self, *, dry_run: bool = False, now: float | None = None,
                    meter: Meter = NO_METER, each: Callable[[Json], None] | None = None,
                    cancelled: Callable[[], bool] | None = None) -> list[Json]:
        """Run maintenance once (see the module docstring); one dict per client and
        library (client, versions, trash_items, blobs, bytes, dry_run, removed), then
        one for orphan blobs (client None), each also handed to `each` as it is done.
        Raises LeaseTaken (a Conflict naming the process) if a run is in progress;
        a dry run needs no lease. Once `cancelled()` is true (the daemon stopping),
        no further client is begun and the orphan step is skipped."""
        if now is not None and not math.isfinite(now):
            # nan and inf fall through every row of the thinning table
            raise BadRequest(f"--now: a time in seconds since the epoch; got {now}")
        now = time.time() if now is None else now
        if dry_run:
            return self._all_clients(now, True, meter, each, cancelled)
        lease = Lease(self.app.db)
        lease.take()
        try:
            finish_journals(self.app)
            return self._all_clients(now, False, meter, each, cancelled, lease)
        finally:
            lease.release()

    def _all_clients(self, now: float, dry_run: bool, meter: Meter,
                     each: Callable[[Json], None] | None,
                     cancelled: Callable[[], bool] | None, lease: Lease | None = None
                     ) -> list[Json]:
        with self.app.db.read() as s:
            trees = [(c.id, c.name, c.retention) for c in repo.clients(s)]
        meter.start(len(trees) + 1)
        results: list[Json] = []
        for client_id, name, overrides in sorted(trees, key=lambda t: t[1]):
            if cancelled is not None and cancelled():
                return results
            if lease is not None:
                lease.renew()
            result = self._one_client(client_id, name, overrides, now, dry_run)
            results.append(result)
            if each is not None:
                each(result)
            meter.advance()
        results.append(self._orphans(dry_run))
        if each is not None:
            each(results[-1])
        meter.advance()
        return results

    def _one_client(self, client_id: int, name: str, overrides: str | None, now: float,
                    dry_run: bool) -> Json:
        """One client's removals, committed (or, dry, only decided)."""
        try:
            rules = policy(self.app.config, overrides)
        except ValueError as e:        # stored overrides unreadable: leave the client be
            log.warning("maintenance skips %s: %s", name, e)
            return {**_summary(name, planning.Plan(), dry_run), "error": str(e)}
        if dry_run:
            with self.app.db.read() as s:
                return _summary(name, _plan(s, client_id, rules, now), dry_run)
        journal = Journal(self.app.data_dir)
        with self.app.db.write() as s:
            if self.app.db.locks_rows:     # PostgreSQL: after the tree's writers
                repo.lock_tree(hot(s), client_id)
            plan = _plan(s, client_id, rules, now)
            blobs = [v.blob_id for v in plan.all_versions()]
            if blobs or plan.node_ids():
                _remove(s, plan)
                self._audit_plan(s, name, plan)
                journal.write(blobs)       # before the commit (see the module docstring)
        for blob_id in blobs:
            self.app.provider.delete_blob(blob_id)
        journal.done()
        return _summary(name, plan, dry_run)

    def _audit_plan(self, s: OrmSession, name: str, plan: planning.Plan) -> None:
        for r in plan.versions:
            v = r.version
            self.app.audit.append(
                s, actor=ACTOR, protocol=self.protocol, address=None, action="purge-version",
                path=f"/{name}{r.path}",
                detail=f"version {v.id} of {_when(v.created_at)}, {v.size} B: {r.reason}")
        for item in plan.items:
            if not item.shown and not item.versions:
                continue                   # an empty row the trash never showed
            ids = ",".join(str(v.id) for v in item.versions)
            self.app.audit.append(
                s, actor=ACTOR, protocol=self.protocol, address=None, action="purge-trash",
                path=f"/{name}{item.path}",
                detail=f"item d{item.node.id} deleted {_when(item.node.deleted_at)}, "
                       f"{len(item.node_ids)} entries, versions {ids or '-'}, "
                       f"{sum(v.size for v in item.versions)} B: {item.reason}")

    def _orphans(self, dry_run: bool) -> Json:
        """Blobs no row names, unchanged for ORPHAN_MIN_AGE (doctor --repair's rules)."""
        if dry_run:
            stray = self._stale(consistency.check(self.app)["stray_blobs"], ORPHAN_MIN_AGE)
            removed = stray
        else:
            removed = self._remove_staging(ORPHAN_MIN_AGE, purge=True)
            removed += self._remove_stray(consistency.check(self.app)["stray_blobs"],
                                          ORPHAN_MIN_AGE, purge=True)
        return {"client": None, "versions": 0, "trash_items": 0, "blobs": len(removed),
                "bytes": None, "dry_run": dry_run, "removed": removed}


def _plan(s: OrmSession, client_id: int, rules: Policy, now: float) -> planning.Plan:
    nodes = s.execute(select(Node.id, Node.parent_id, Node.name, Node.is_dir,
                             Node.current_version_id, Node.deleted_at)
                      .where(Node.client_id == client_id))
    versions = s.execute(select(Version.id, Version.node_id, Version.created_at, Version.size,
                                Version.pinned, Version.blob_id)
                         .join(Node, Node.id == Version.node_id)
                         .where(Node.client_id == client_id))
    tree = planning.Tree((planning.NodeRow(*n) for n in nodes),
                         (planning.VersionRow(*v) for v in versions))
    return planning.plan(tree, rules, now)


def _remove(s: OrmSession, plan: planning.Plan) -> None:
    """Delete the plan's rows: dead properties, versions, then nodes, children
    before their folders."""
    versions = [v.id for v in plan.all_versions()]
    nodes = plan.node_ids()
    for i in range(0, len(nodes), _IN_BATCH):
        s.execute(delete(DeadProperty).where(DeadProperty.node_id.in_(nodes[i:i + _IN_BATCH]))
                  .execution_options(synchronize_session=False))
    for i in range(0, len(versions), _IN_BATCH):
        s.execute(delete(Version).where(Version.id.in_(versions[i:i + _IN_BATCH]))
                  .execution_options(synchronize_session=False))
    for i in range(0, len(nodes), _IN_BATCH):
        s.execute(delete(Node).where(Node.id.in_(nodes[i:i + _IN_BATCH]))
                  .execution_options(synchronize_session=False))


def _summary(name: str, plan: planning.Plan, dry_run: bool) -> Json:
    removed: list[Json] = [
        {"path": f"/{name}{r.path}", "version": r.version.id, "size": r.version.size,
         "reason": r.reason} for r in plan.versions]
    removed += [{"path": f"/{name}{i.path}", "item": f"d{i.node.id}",
                 "versions": [v.id for v in i.versions],
                 "size": sum(v.size for v in i.versions), "reason": i.reason}
                for i in plan.items if i.shown or i.versions]
    return {"client": name, "versions": len(plan.versions),
            "trash_items": sum(1 for i in plan.items if i.shown),
            "blobs": len(plan.all_versions()), "bytes": plan.bytes(), "dry_run": dry_run,
            "removed": removed}


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


class Journal:
    """The blob ids a maintenance transaction drops, on disk before it commits."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = Path(data_dir) / "maintenance"
        self.path = self.folder / f"purge-{os.getpid()}-{id(self):x}.json"

    def write(self, blob_ids: list[str]) -> None:
        if not blob_ids:
            return
        self.folder.mkdir(mode=0o700, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(blob_ids, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.folder)

    def done(self) -> None:
        self.path.unlink(missing_ok=True)



def finish_journals(app: "App") -> int:
    """Delete the blobs named by journals a killed run left that no version names
    (its transaction committed; the lease holder calls this, so no journal is
    still being written). Returns how many blobs went."""
    folder = Path(app.data_dir) / "maintenance"
    if not folder.is_dir():
        return 0
    gone = 0
    for path in sorted(folder.glob("purge-*")):
        try:
            blob_ids = [str(b) for b in json.loads(path.read_text())] \
                if path.suffix == ".json" else []
        except ValueError:
            blob_ids = []          # torn before os.replace: that run never committed
        keep = referenced(app, blob_ids) if blob_ids else set()
        for blob_id in blob_ids:
            if blob_id not in keep:
                app.provider.delete_blob(blob_id)
                gone += 1
        path.unlink(missing_ok=True)
    if gone:
        log.info("deleted %d blobs an interrupted maintenance run had dropped", gone)
    return gone
