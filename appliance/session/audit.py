"""The hash-chained audit trail.

Each event's hash covers the previous event's hash and the event's own fields,
so removing, altering or reordering a row breaks the chain at that row.
Appending first updates the single audit_head row: that row lock serialises
appenders, also across processes sharing one PostgreSQL database.
"""
import hashlib
import json
import time

from sqlalchemy import bindparam, select, update

from appliance.db.models import AuditEvent, AuditHead

GENESIS = "0" * 64
_FIELDS = ("ts", "actor", "protocol", "address", "action", "path", "outcome", "detail")


def _digest(prev_hash: str, fields: dict) -> str:
    body = json.dumps([fields[k] for k in _FIELDS], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


# Statements built once (with bound parameters they keep their compiled form).
_ADVANCE = (update(AuditHead).where(AuditHead.id == 1,
                                    AuditHead.last_hash == bindparam("prev"))
            .values(count=AuditHead.count + 1, last_hash=bindparam("digest"))
            .execution_options(synchronize_session=False))
_LOCK_HEAD = (update(AuditHead).where(AuditHead.id == 1).values(count=AuditHead.count + 1)
              .returning(AuditHead.last_hash).execution_options(synchronize_session=False))
_SET_HEAD = (update(AuditHead).where(AuditHead.id == 1).values(last_hash=bindparam("digest"))
             .execution_options(synchronize_session=False))
_INSERT = AuditEvent.__table__.insert()

# The chain's end as this process last wrote it: a guess that saves a round trip.
# _ADVANCE applies only if the head still holds it, so a stale guess (another
# process appended, or our transaction rolled back) costs the slow path, never a
# broken chain.
_last_written: str | None = None


def append(s, *, actor, protocol, address, action, path=None, outcome="ok", detail=None) -> None:
    """Add one event inside the caller's write transaction (an ORM session or an
    appliance.db.fast.Fast)."""
    global _last_written
    fields = dict(ts=round(time.time(), 6), actor=actor, protocol=protocol, address=address,
                  action=action, path=path, outcome=outcome, detail=detail)
    prev = _last_written
    digest = _digest(prev, fields) if prev is not None else None
    if digest is None or s.execute(_ADVANCE, {"prev": prev, "digest": digest}).rowcount != 1:
        # One statement takes the row lock and reads the chain's end (the migration
        # made the row); the lock is held until the caller commits.
        prev = s.execute(_LOCK_HEAD).scalar_one()
        digest = _digest(prev, fields)
        s.execute(_SET_HEAD, {"digest": digest})
    # Inserted while the head row is locked: event ids follow the chain's order.
    s.execute(_INSERT, dict(prev_hash=prev, hash=digest, **fields))
    _last_written = digest


def events(s, *, actor=None, client=None, action=None, outcome_not_ok=False, since=None,
           limit=None) -> list[dict]:
    """Events, oldest first, filtered: by who, by client tree (its '/<client>' paths),
    by action, only refusals and failures, from a time on; `limit` keeps the newest
    that many."""
    q = select(AuditEvent)
    if actor is not None:
        q = q.where(AuditEvent.actor == actor)
    if client is not None:
        q = q.where((AuditEvent.path == f"/{client}")
                    | AuditEvent.path.startswith(f"/{client}/", autoescape=True))
    if action is not None:
        q = q.where(AuditEvent.action == action)
    if outcome_not_ok:
        q = q.where(AuditEvent.outcome != "ok")
    if since is not None:
        q = q.where(AuditEvent.ts >= since)
    q = q.order_by(AuditEvent.id.desc())
    if limit is not None:
        q = q.limit(limit)
    rows = list(s.scalars(q))[::-1]
    return [dict(id=ev.id, **{k: getattr(ev, k) for k in _FIELDS}, prev_hash=ev.prev_hash,
                 hash=ev.hash) for ev in rows]


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
