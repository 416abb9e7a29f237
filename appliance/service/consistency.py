"""Consistency of metadata and store: stray blobs, missing blobs, staging leftovers."""
import os
import time

from strongroom.appliance.db import repo
from strongroom.providers.staging import remove_if_abandoned


def check(app, *, repair: bool = False, min_age: float = 600.0) -> dict:
    """Compare blob files with version rows. With `repair`, delete stray blobs older
    than `min_age` seconds (a younger one may belong to an upload committing now)
    and staging leftovers of the same age that no process holds (providers.staging)."""
    with app.db.read() as s:
        known = repo.all_blob_ids(s)
    on_disk = set(app.provider.blob_ids())
    stray = sorted(on_disk - known)
    staging = sorted(p.name for p in app.provider.staging.iterdir())
    report = {"blobs": len(on_disk), "versions": len(known), "stray_blobs": stray,
              "missing_blobs": sorted(known - on_disk), "staging_files": staging,
              "removed": []}
    if repair:
        cutoff = time.time() - min_age
        for blob_id in stray:
            if _older(app.provider._path(blob_id), cutoff):
                app.provider.delete_blob(blob_id)
                report["removed"].append(blob_id)
        for name in staging:
            path = app.provider.staging / name
            if _older(path, cutoff) and remove_if_abandoned(path):
                report["removed"].append(name)
    report["ok"] = not (report["missing_blobs"] or set(stray + staging) - set(report["removed"]))
    return report


def _older(path, cutoff: float) -> bool:
    """True if `path` was last changed before `cutoff`; a running daemon may have
    removed it meanwhile (an upload aborted or committed): then it is gone already."""
    try:
        return os.path.getmtime(path) < cutoff
    except FileNotFoundError:
        return False
