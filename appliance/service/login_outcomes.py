"""What every login attempt meets before and after its credentials are checked,
for appliance.service.login's Authenticator: the throttle's gate (refused while
blocked, delayed when due) and the outcome, counted, audited and logged once."""
import logging
import time
from typing import TYPE_CHECKING, NoReturn

from strongroom.appliance.db import Database
from strongroom.appliance.errors import AuthFailed
from strongroom.appliance.service.audit import Chain
from strongroom.appliance.service.lockout import Attempt, Lockout
from strongroom.appliance.service.principal import Principal

if TYPE_CHECKING:
    from strongroom.appliance.metrics import Metrics

log = logging.getLogger("strongroom.auth")

FAILED = "invalid login or password"


class Outcomes:
    """The gate and the outcomes of logins, over the lockout (throttle state), the
    audit chain and the metrics (None: nothing is counted)."""

    def __init__(self, db: Database, lockout: Lockout, audit_chain: Chain):
        self._db, self._lockout, self._chain = db, lockout, audit_chain
        # appliance.metrics.Metrics when the daemon counts logins
        self.metrics: "Metrics | None" = None

    # -- the gate ----------------------------------------------------------------------

    def begin(self, login: str, protocol: str, address: str | None) -> Attempt:
        """Start an attempt that checks a secret: refused if blocked (attempts in
        flight counting as failures), delayed if due; the token for lockout.end."""
        attempt, blocked, delay = self._lockout.begin(login, address)
        if blocked:
            self._lockout.end(attempt)
            self.refuse_blocked(login, protocol, address)
        if delay:
            self._count_delay(protocol)
            time.sleep(delay)
        return attempt

    def gate(self, login: str, protocol: str, address: str | None) -> float:
        """Refuse a blocked account or address; otherwise the seconds this attempt
        must wait before its credentials are checked."""
        blocked, delay = self._lockout.judge(login, address)
        if blocked:
            self.refuse_blocked(login, protocol, address)
        return delay

    def wait_at_gate(self, login: str, protocol: str, address: str | None) -> None:
        delay = self.gate(login, protocol, address)
        if delay:
            self._count_delay(protocol)
            time.sleep(delay)

    def refuse_blocked(self, login: str, protocol: str, address: str | None) -> NoReturn:
        self._audit(login, protocol, address, "blocked", "throttled")
        self._log(protocol, login, address, "throttled", "throttled",
                  "%s login for %r from %s refused: too many failures", protocol, login[:64],
                  address)
        raise AuthFailed(FAILED)

    # -- outcomes ---------------------------------------------------------------------

    def failed(self, login: str, protocol: str, address: str | None, method: str) -> NoReturn:
        """Count, audit and log a failure, and refuse the login."""
        self.count_failure(login, protocol, address, method)
        raise AuthFailed(FAILED)

    def count_failure(self, login: str, protocol: str, address: str | None,
                      method: str) -> None:
        self._lockout.failed(login, address)
        self._audit(login, protocol, address, "failed", method)
        self._log(protocol, login, address, "failed", method,
                  "%s login refused for %r from %s (%s)", protocol, login[:64], address, method)

    def succeeded(self, principal: Principal, protocol: str, address: str | None,
                  method: str) -> None:
        self._lockout.succeeded(principal.login)
        self._audit(principal.login, protocol, address, "ok", method)
        self._log(protocol, principal.login, address, "ok", method,
                  "%s login %s (%s) from %s", protocol, principal.login, method, address)

    def _log(self, protocol: str, login: str, address: str | None, outcome: str, method: str,
             message: str, *args: object) -> None:
        """The one log line of a login's outcome (the adapters log none), counted in
        the metrics too."""
        log.info(message, *args, extra={"protocol": protocol, "login": login[:64],
                                        "address": address, "outcome": outcome,
                                        "method": method})
        if self.metrics is not None:
            self.metrics.login(protocol, outcome)

    def _count_delay(self, protocol: str) -> None:
        if self.metrics is not None:
            self.metrics.delays.labels(protocol).inc()

    def _audit(self, login: str, protocol: str, address: str | None, outcome: str,
               method: str) -> None:
        self._chain.record(self._db, actor=login[:64], protocol=protocol, address=address,
                           action="login", outcome=outcome, detail=method)
