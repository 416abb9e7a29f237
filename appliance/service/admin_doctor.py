"""`doctor`, mixed into Admin: compare metadata and store (appliance.service.consistency)
and, asked to, repair what can be repaired: stray blobs and staging leftovers are
removed through the provider's interface, each removal audited (doctor-repair).
A missing blob cannot be repaired here: its version must come from a backup."""
import time

from strongroom.appliance.service import consistency
from strongroom.appliance.service.admin_base import AdminBase


class DoctorMixin(AdminBase):
    def doctor(self, *, repair: bool = False, min_age: float = 600.0) -> consistency.Report:
        """The consistency report; with `repair`, stray blobs and staging leftovers
        unchanged for `min_age` seconds are removed first (a younger stray blob may
        belong to an upload committing now), and `removed` names them. Staging files
        a live process holds are never removed (providers.staging)."""
        report = consistency.check(self.app)
        if repair:
            report["removed"] = (self._remove_stray(report["stray_blobs"], min_age)
                                 + self._remove_staging(min_age))
            report["ok"] = consistency.is_ok(report)
        return report

    def _remove_stray(self, blob_ids: list[str], min_age: float) -> list[str]:
        provider, cutoff = self.app.provider, time.time() - min_age
        removed = []
        for blob_id in blob_ids:
            modified = provider.blob_modified(blob_id)
            if modified is None or modified >= cutoff:
                continue    # gone meanwhile (nothing to do), or perhaps committing now
            with self.app.db.write() as s:
                self._audit(s, "doctor-repair", None, f"removed stray blob {blob_id}")
                provider.delete_blob(blob_id)
            removed.append(blob_id)
        return removed

    def _remove_staging(self, min_age: float) -> list[str]:
        removed = self.app.provider.clean_staging(min_age)
        if removed:
            with self.app.db.write() as s:
                for name in removed:
                    self._audit(s, "doctor-repair", None, f"removed staging leftover {name}")
        return removed
