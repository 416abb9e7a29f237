"""One maintenance run at a time, across threads, processes and nodes sharing the
database: a row of maintenance_leases names the process running the job and until
when. A process takes the job with one conditional UPDATE (the row's time has
passed, or its holder is a process of this host that has died), or inserts the row
if there is none yet; holds it while it runs (renewing it, so that a long run
keeps it), and gives it back at the end. A process killed while holding it loses
it when its time passes, or at once to a process of the same host.

Lease times are the wall clock (time.time()), whatever clock a run decides by:
every process must read them alike.
"""
import os
import secrets
import socket
import time

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from strongroom.appliance.db import Database
from strongroom.appliance.db.dml import rowcount
from strongroom.appliance.db.models import MaintenanceLease
from strongroom.appliance.errors import Conflict

NAME = "maintenance"
# How long a lease lasts without renewal; a run renews it once half has passed.
TTL = 300.0


class LeaseTaken(Conflict):
    """Another process holds the lease; the message names it."""


def _holder() -> str:
    """This taker: host, process and a token of its own (two threads of one process
    are two takers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def describe(holder: str) -> str:
    """'process PID on HOST' for a holder string."""
    host, pid, _ = (holder.rsplit(":", 2) + ["", ""])[:3]
    return f"process {pid} on {host}"


def _dead_here(holder: str) -> bool:
    """Whether `holder` is a process of this host that no longer runs."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Lease:
    """The lease `name`, taken by `take()` and given back by `release()`."""

    def __init__(self, db: Database, name: str = NAME, ttl: float = TTL) -> None:
        self._db, self.name, self.ttl = db, name, ttl
        self.holder = _holder()
        self._renewed = 0.0

    def take(self) -> None:
        """Take the lease, or raise LeaseTaken naming the process that holds it."""
        now = time.time()
        with self._db.write() as s:
            row = s.get(MaintenanceLease, self.name)
            stale = row.holder if row is not None and _dead_here(row.holder) else ""
            taken = row is not None and rowcount(s.execute(
                update(MaintenanceLease)
                .where(MaintenanceLease.name == self.name,
                       (MaintenanceLease.expires_at < now)
                       | (MaintenanceLease.holder == stale))
                .values(holder=self.holder, expires_at=now + self.ttl)
                .execution_options(synchronize_session=False))) == 1
        if row is None:     # outside the transaction above: SQLite has one writer
            taken = self._insert(now)
        if not taken:
            raise LeaseTaken(f"maintenance is running in {describe(self._current())}; "
                             "try later")
        self._renewed = now

    def _insert(self, now: float) -> bool:
        """Insert the row in a transaction of its own; False if another process did
        first (the primary key)."""
        try:
            with self._db.write() as s:
                s.execute(insert(MaintenanceLease).values(
                    name=self.name, holder=self.holder, expires_at=now + self.ttl))
            return True
        except IntegrityError:
            return False

    def _current(self) -> str:
        with self._db.read() as s:
            holder = s.scalar(select(MaintenanceLease.holder)
                              .where(MaintenanceLease.name == self.name))
        return holder or "another process"

    def renew(self) -> None:
        """Extend the lease once half its time has passed; LeaseTaken if it was lost
        (it ran out and another process took it)."""
        now = time.time()
        if now - self._renewed < self.ttl / 2:
            return
        if not self._set(now + self.ttl):
            raise LeaseTaken(f"the maintenance lease was lost to {describe(self._current())}")
        self._renewed = now

    def release(self) -> None:
        """Give the lease back (if still held)."""
        self._set(0.0)

    def _set(self, expires_at: float) -> bool:
        with self._db.write() as s:
            return rowcount(s.execute(
                update(MaintenanceLease)
                .where(MaintenanceLease.name == self.name,
                       MaintenanceLease.holder == self.holder)
                .values(expires_at=expires_at)
                .execution_options(synchronize_session=False))) == 1
