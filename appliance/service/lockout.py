"""Failed-login counters in the metadata database (so they hold across restarts,
processes and nodes), judged by the pure rules of auth.throttle.

Each attempt is judged on two counters: the account's and the source address's.
Accounts that do not exist are counted like any other, so a block never tells
whether an account exists.

Attempts being checked right now are kept in memory (`begin` ... `end`) and
count in the verdict of others, so a burst of parallel attempts meets the block
its failures will cause (within a process; each process adds its own).
"""
import threading
import time
from typing import Protocol, TypeAlias

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import Database, repo
from strongroom.appliance.db.dml import rowcount
from strongroom.appliance.db.models import LoginThrottle
from strongroom.appliance.errors import NoSpace
from strongroom.appliance.notify import outbox
from strongroom.appliance.service.access import hot
from strongroom.auth.throttle import Policy, State, after_failure, verdict
from strongroom.config.loader import Config

# An attempt in flight, as `begin` hands it out and `end` takes it back: its counter
# keys and when it started (time.monotonic).
Attempt: TypeAlias = tuple[tuple[str, ...], float]


class ThrottleOptions(Protocol):
    """The options of the [auth] section the throttle reads."""
    @property
    def account_delay_after(self) -> int: ...
    @property
    def account_block_after(self) -> int: ...
    @property
    def address_delay_after(self) -> int: ...
    @property
    def address_block_after(self) -> int: ...
    @property
    def delay(self) -> float: ...
    @property
    def block_time(self) -> float: ...
    @property
    def block_max(self) -> float: ...
    @property
    def forget_after(self) -> float: ...


def policies(cfg: Config) -> tuple[Policy, Policy]:
    """(account policy, address policy) from the [auth] section."""
    a: ThrottleOptions = cfg.auth
    common = dict(delay=a.delay, block_seconds=a.block_time, block_max=a.block_max,
                  forget_after=a.forget_after)
    return (Policy(delay_after=a.account_delay_after, block_after=a.account_block_after,
                   **common),
            Policy(delay_after=a.address_delay_after, block_after=a.address_block_after,
                   **common))


def _notify_blocked(s: OrmSession, login: str, address: str | None) -> None:
    """The account `login` (if it is one) has just been blocked: its owner hears of it
    at once, in the transaction that blocks it."""
    user = repo.user_named_alike(s, login)
    if user is not None:
        outbox.security(hot(s), user.id, "account-blocked", address=address)


def _state(row: LoginThrottle | None) -> State:
    return State() if row is None else State(row.failures, row.last_failure, row.blocked_until)


_T = LoginThrottle.__table__
# Asked before every login, remembered or not (every WebDAV request): Core, on the
# DBAPI cursor (appliance.db.fast); the account's counter and the address's.
_COUNTERS = select(_T.c.key, _T.c.failures, _T.c.last_failure, _T.c.blocked_until).where(
    _T.c.key.in_([bindparam("account"), bindparam("address")]))


IN_FLIGHT_MAX = 300.0   # seconds: an attempt never ended (a bug, a lost thread) is forgotten


class Lockout:
    def __init__(self, db: Database, cfg: Config):
        self.db = db
        self.account, self.address = policies(cfg)
        self._inflight: dict[str, list[float]] = {}
        self._mutex = threading.Lock()

    def begin(self, login: str, address: str | None) -> tuple[Attempt, bool, float]:
        """Start an attempt: (token for `end`, blocked, delay), judged with the other
        attempts still in flight."""
        keys, now = self._keys(login, address), time.monotonic()
        with self._mutex:
            pending = {key: self._pending(key, now) for key, _ in keys}
            for key, _ in keys:
                self._inflight.setdefault(key, []).append(now)
        blocked, delay = self.judge(login, address, pending)
        return (tuple(k for k, _ in keys), now), blocked, delay

    def end(self, token: Attempt) -> None:
        """The attempt `token` was counted (failed) or succeeded."""
        keys, started = token
        with self._mutex:
            for key in keys:
                times = self._inflight.get(key)
                if times and started in times:
                    times.remove(started)
                if not times:
                    self._inflight.pop(key, None)

    def _pending(self, key: str, now: float) -> int:
        times = [t for t in self._inflight.get(key, ()) if now - t < IN_FLIGHT_MAX]
        if times:
            self._inflight[key] = times
        else:
            self._inflight.pop(key, None)
        return len(times)

    def _keys(self, login: str, address: str | None) -> list[tuple[str, Policy]]:
        keys = [(f"login:{login.lower()[:150]}", self.account)]
        if address:
            keys.append((f"addr:{address}", self.address))
        return keys

    def judge(self, login: str, address: str | None,
              pending: dict[str, int] | None = None) -> tuple[bool, float]:
        """(blocked, delay in seconds) for an attempt now; `pending`: attempts in
        flight by counter key."""
        now = time.time()
        keys = self._keys(login, address)
        names = [k for k, _ in keys]
        with self.db.fast_read() as s:
            found = s.execute(_COUNTERS, {"account": names[0], "address": names[-1]}).all()
        rows = {r[0]: State(r[1], r[2], r[3]) for r in found}
        blocked, delay = False, 0.0
        for key, policy in keys:
            b, d = verdict(rows.get(key, State()), policy, now, (pending or {}).get(key, 0))
            blocked, delay = blocked or b, max(delay, d)
        return blocked, delay

    def failed(self, login: str, address: str | None) -> None:
        for attempt in range(3):
            try:
                with self.db.write() as s:
                    now = time.time()
                    for key, policy in self._keys(login, address):
                        row = s.get(LoginThrottle, key)
                        new = after_failure(_state(row), policy, now)
                        if key.startswith("login:") and \
                                new.blocked_until > now >= _state(row).blocked_until:
                            _notify_blocked(s, login, address)
                        if row is None:
                            s.add(LoginThrottle(key=key, failures=new.failures,
                                                last_failure=new.last_failure,
                                                blocked_until=new.blocked_until))
                        else:
                            row.failures, row.last_failure = new.failures, new.last_failure
                            row.blocked_until = new.blocked_until
                return
            except IntegrityError:   # another process inserted the same counter first
                if attempt == 2:
                    raise

    def succeeded(self, login: str) -> None:
        """A successful login clears the account's counter (not the address's); on a
        database whose disk is full the counter stays, and the login goes on."""
        try:
            self.unlock(login=login)
        except NoSpace:
            pass

    def unlock(self, *, login: str | None = None, address: str | None = None) -> int:
        keys = ([f"login:{login.lower()[:150]}"] if login else []) + \
               ([f"addr:{address}"] if address else [])
        with self.db.write() as s:
            return rowcount(s.execute(delete(LoginThrottle)
                                      .where(LoginThrottle.key.in_(keys))))
