"""Consistency of metadata and store: stray blobs, missing blobs, staging files.
Only looks; the repairs are the admin's (appliance.service.admin_doctor)."""
from typing import TYPE_CHECKING, NotRequired, TypedDict

from strongroom.appliance.db import repo

if TYPE_CHECKING:
    from strongroom.appliance.app import App


class Report(TypedDict):
    """What `strongroom doctor` prints (--json as it is)."""
    blobs: int                  # blobs in the store
    versions: int               # distinct blobs the version rows name
    stray_blobs: list[str]      # in the store, named by no version
    missing_blobs: list[str]    # named by a version, not in the store
    staging_files: list[str]
    removed: list[str]          # what a repair removed
    ok: bool
    # keys (service.keys_status.problems): master key ids not held, data keys wrapped
    # by a key their client lacks, rotations left half done with what finishes them
    keys: NotRequired[list[str]]


def check(app: "App") -> Report:
    """Compare the provider's blobs with the version rows, and list its staging
    files (uploads in progress, or leftovers of a process that died)."""
    with app.db.read() as s:
        known = repo.all_blob_ids(s)
    on_disk = set(app.provider.blob_ids())
    report = Report(blobs=len(on_disk), versions=len(known),
                    stray_blobs=sorted(on_disk - known), missing_blobs=sorted(known - on_disk),
                    staging_files=app.provider.staging_files(), removed=[], ok=False)
    report["ok"] = is_ok(report)
    return report


def is_ok(report: Report) -> bool:
    """No blob missing, and every stray blob and staging file removed."""
    unremoved = set(report["stray_blobs"] + report["staging_files"]) - set(report["removed"])
    return not (report["missing_blobs"] or unremoved or report.get("keys"))
