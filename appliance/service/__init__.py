"""The service layer: sessions, transfers, login, provisioning and the audit trail."""
from strongroom.appliance.service.principal import ADMIN, Principal
from strongroom.appliance.service.service import Session

__all__ = ["ADMIN", "Principal", "Session"]
