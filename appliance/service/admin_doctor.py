"""`doctor`, mixed into Admin: compare metadata and store (appliance.service.consistency)
and, asked to, repair what can be repaired: stray blobs and staging leftovers are
removed through the provider's interface, each removal audited (doctor-repair).
A missing blob cannot be repaired here: its version must come from a backup.

`clean_staging` is also what the daemon runs at its start: leftovers of processes
that died go, and so does every blob such a process published but whose version it
never committed (the provider's publishing journal, providers/local.py): whether a
version names it is asked only once its publisher is dead, and on PostgreSQL only
after the transactions still writing versions (a dead client's COMMIT the server
is finishing) have ended, so a blob a committed version names is never deleted.
"""
import time
from typing import TYPE_CHECKING

from sqlalchemy import select, text

from strongroom.appliance.db.models import Version
from strongroom.appliance.service import consistency, keys_status
from strongroom.appliance.service.admin_base import AdminBase

if TYPE_CHECKING:
    from strongroom.appliance.app import App

_IN_BATCH = 500


def clean_staging(app: "App", min_age: float = 0.0) -> list[str]:
    """Remove staging leftovers and the blobs dead processes published without a
    version (unchanged for `min_age` seconds); return what was removed."""
    return app.provider.clean_staging(min_age, referenced=lambda ids: referenced(app, ids))


def referenced(app: "App", blob_ids: list[str]) -> set[str]:
    """Those of `blob_ids` a version row names. On PostgreSQL a SHARE lock on the
    versions table first waits for every transaction that wrote to it."""
    found: set[str] = set()
    with app.db.write() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text(f"LOCK TABLE {Version.__tablename__} IN SHARE MODE"))
        for i in range(0, len(blob_ids), _IN_BATCH):
            found.update(s.scalars(select(Version.blob_id)
                                   .where(Version.blob_id.in_(blob_ids[i:i + _IN_BATCH]))))
    return found


class DoctorMixin(AdminBase):
    def doctor(self, *, repair: bool = False, min_age: float = 600.0) -> consistency.Report:
        """The consistency report; with `repair`, stray blobs and staging leftovers
        unchanged for `min_age` seconds are removed first (a younger stray blob may
        belong to an upload committing now), and `removed` names them. Staging files
        a live process holds are never removed (providers.staging); blobs a dead
        process published without a version count as staging leftovers."""
        removed = self._remove_staging(min_age) if repair else []
        report = consistency.check(self.app)
        if repair:
            report["removed"] = removed + self._remove_stray(report["stray_blobs"], min_age)
        report["keys"] = keys_status.problems(self.app)
        report["ok"] = consistency.is_ok(report)
        return report

    def _stale(self, blob_ids: list[str], min_age: float) -> list[str]:
        """Those of `blob_ids` still there and unchanged for `min_age` seconds (a
        younger stray blob may belong to an upload committing now)."""
        provider, cutoff = self.app.provider, time.time() - min_age
        stale = []
        for blob_id in blob_ids:
            modified = provider.blob_modified(blob_id)
            if modified is not None and modified < cutoff:
                stale.append(blob_id)
        return stale

    def _remove_stray(self, blob_ids: list[str], min_age: float,
                      purge: bool = False) -> list[str]:
        """Remove those of stray `blob_ids` that are stale (_stale), each audited as
        doctor-repair (maintenance's: purge-blob)."""
        removed = []
        for blob_id in self._stale(blob_ids, min_age):
            with self.app.db.write() as s:
                self._audit(s, "purge-blob" if purge else "doctor-repair", None,
                            f"removed stray blob {blob_id}")
                self.app.provider.delete_blob(blob_id)
            removed.append(blob_id)
        return removed

    def _remove_staging(self, min_age: float, purge: bool = False) -> list[str]:
        """Staging leftovers and blobs of dead publishers without a version, unchanged
        for `min_age` seconds (clean_staging), each removal audited (as _remove_stray)."""
        removed = clean_staging(self.app, min_age)
        if removed:
            with self.app.db.write() as s:
                for name in removed:
                    what = "staging leftover" if "." in name else "unrecorded blob"
                    self._audit(s, "purge-blob" if purge else "doctor-repair", None,
                                f"removed {what} {name}")
        return removed
