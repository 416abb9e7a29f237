"""The hash-chained audit trail.

Each event's hash covers the previous event's hash and the event's own fields,
so removing, altering or reordering a row breaks the chain at that row.
Appending first updates the single audit_head row: that row lock serialises
appenders, also across processes sharing one PostgreSQL database.
"""
import hashlib
import json
import time

from sqlalchemy import select, update

from appliance.db.models import AuditEvent, AuditHead

GENESIS = "0" * 64
_FIELDS = ("ts", "actor", "protocol", "address", "action", "path", "outcome", "detail")


def _digest(prev_hash: str, fields: dict) -> str:
    body = json.dumps([fields[k] for k in _FIELDS], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def append(s, *, actor, protocol, address, action, path=None, outcome="ok", detail=None) -> None:
    """Add one event inside the caller's write transaction."""
    fields = dict(ts=round(time.time(), 6), actor=actor, protocol=protocol, address=address,
                  action=action, path=path, outcome=outcome, detail=detail)
    # One statement takes the row lock and reads the chain's end (the migration made the row).
    prev = s.execute(update(AuditHead).where(AuditHead.id == 1)
                     .values(count=AuditHead.count + 1)
                     .returning(AuditHead.last_hash)).scalar_one()
    digest = _digest(prev, fields)
    s.add(AuditEvent(prev_hash=prev, hash=digest, **fields))
    s.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=digest))


def verify(s) -> tuple[int, int | None]:
    """Walk the chain: (events checked, id of the first bad event or None)."""
    prev, count = GENESIS, 0
    for ev in s.scalars(select(AuditEvent).order_by(AuditEvent.id)).yield_per(1000):
        fields = {k: getattr(ev, k) for k in _FIELDS}
        if ev.prev_hash != prev or _digest(prev, fields) != ev.hash:
            return count, ev.id
        prev, count = ev.hash, count + 1
    head = s.get(AuditHead, 1)
    if head is not None and head.last_hash != prev:
        return count, -1
    return count, None
