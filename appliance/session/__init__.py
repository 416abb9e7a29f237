"""The service layer: sessions, transfers, login, provisioning and the audit trail."""
from appliance.session.principal import ADMIN, Principal
from appliance.session.service import Session

__all__ = ["ADMIN", "Principal", "Session"]
