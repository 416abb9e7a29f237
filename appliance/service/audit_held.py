"""Audit events held in memory while the database's disk is full (appliance.service.audit).

`record` appends an event that is a transaction of its own (a read, a login, a
refusal); when the database cannot take it for lack of space (NoSpace), the event
is kept here, with the time it happened, and `flush` appends the kept events in
order once there is room. Bounded: past HELD_MAX the operation is refused instead
of its event being lost.
"""
import logging
import threading
import time
from typing import TYPE_CHECKING, TypedDict

from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.hotpath import HotPath
from strongroom.appliance.errors import NoSpace

if TYPE_CHECKING:
    from strongroom.appliance.db import Database

log = logging.getLogger("strongroom.audit")

# Events held at most (a few hundred bytes each), how many `flush` writes per
# transaction, and how often `record` tries to write held events itself.
HELD_MAX = 100_000
FLUSH_BATCH = 500
RETRY_EVERY = 1.0


class Fields(TypedDict):
    """What an event's hash covers (_FIELDS, in that order)."""
    ts: float
    actor: str
    protocol: str
    address: str | None
    action: str
    path: str | None
    outcome: str
    detail: str | None


class HeldEvents:
    """The part of audit.Chain that holds events; Chain supplies `_append`."""

    def __init__(self) -> None:
        self._held: list[Fields] = []        # oldest first
        self._holding = threading.Lock()
        self._flushing = threading.Lock()
        self._retry_at = 0.0

    def _append(self, s: HotPath | OrmSession, fields: Fields) -> None:
        raise NotImplementedError

    def record(self, db: "Database", *, actor: str, protocol: str, address: str | None,
               action: str, path: str | None = None, outcome: str = "ok",
               detail: str | None = None) -> None:
        """Add one event that is a transaction of its own (a read, a login, a refusal:
        nothing else to commit with it). If the database cannot take it because its
        disk is full (NoSpace), the event is held in memory with its time, and
        `flush` appends the held events, in order, once it can; while any are held,
        later events queue behind them (trying `flush` first at most every
        RETRY_EVERY seconds). NoSpace only when HELD_MAX events are held and still
        cannot be written: then the operation is refused rather than its event lost."""
        fields = Fields(ts=round(time.time(), 6), actor=actor, protocol=protocol,
                        address=address, action=action, path=path, outcome=outcome,
                        detail=detail)
        if self._held and (len(self._held) >= HELD_MAX or time.monotonic() >= self._retry_at):
            self._retry_at = time.monotonic() + RETRY_EVERY
            self.flush(db)      # room again? then the held ones go first
        if not self._held:
            try:
                with db.fast_write() as s:
                    self._append(s, fields)
                return
            except NoSpace:
                self._retry_at = time.monotonic() + RETRY_EVERY
        self._hold(fields)

    def _hold(self, fields: Fields) -> None:
        with self._holding:
            if len(self._held) >= HELD_MAX:
                raise NoSpace("not enough free space on the server: the audit trail cannot "
                              "be written")
            if not self._held:
                log.warning("audit trail: the database's disk is full; events are held in "
                            "memory (at most %d) and written once it has room", HELD_MAX)
            self._held.append(fields)

    @property
    def holding(self) -> int:
        """How many events wait in memory for room in the database."""
        return len(self._held)

    def flush(self, db: "Database") -> bool:
        """Append the held events, oldest first, FLUSH_BATCH to a transaction; True
        once none is held. One log line when they are all written."""
        with self._flushing:
            written = 0
            while self._held:
                with self._holding:
                    batch = self._held[:FLUSH_BATCH]
                try:
                    with db.fast_write() as s:
                        for fields in batch:
                            self._append(s, fields)
                except NoSpace:
                    return False
                with self._holding:
                    del self._held[:len(batch)]
                written += len(batch)
            if written:
                log.info("audit trail: the %d events held while the database's disk was "
                         "full are written", written)
            return True
