"""Consistency of metadata and store: stray blobs, missing blobs, staging files.
Only looks; the repairs are the admin's (appliance.service.admin_doctor)."""
from strongroom.appliance.db import repo


def check(app) -> dict:
    """Compare the provider's blobs with the version rows, and list its staging
    files (uploads in progress, or leftovers of a process that died)."""
    with app.db.read() as s:
        known = repo.all_blob_ids(s)
    on_disk = set(app.provider.blob_ids())
    report = {"blobs": len(on_disk), "versions": len(known),
              "stray_blobs": sorted(on_disk - known), "missing_blobs": sorted(known - on_disk),
              "staging_files": app.provider.staging_files(), "removed": []}
    report["ok"] = is_ok(report)
    return report


def is_ok(report: dict) -> bool:
    """No blob missing, and every stray blob and staging file removed."""
    unremoved = set(report["stray_blobs"] + report["staging_files"]) - set(report["removed"])
    return not (report["missing_blobs"] or unremoved)
