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
    locked = s.execute(update(AuditHead).where(AuditHead.id == 1)
                       .values(count=AuditHead.count + 1)).rowcount
    if not locked:
        s.add(AuditHead(id=1, last_hash=GENESIS, count=1))
        s.flush()
    head = s.get(AuditHead, 1, populate_existing=True)
    digest = _digest(head.last_hash, fields)
    s.add(AuditEvent(prev_hash=head.last_hash, hash=digest, **fields))
    head.last_hash = digest


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
