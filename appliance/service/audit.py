"""The audit trail: a keyed hash chain in the database, anchored outside it.

Each event's hash is an HMAC, under a key derived from the master key (never in
the database), of the previous event's hash and the event's own fields: removing,
altering or reordering a row breaks the chain at that row, and someone who can
write the database but has no master key cannot compute a chain that verifies.
Appending first updates the single audit_head row: that row lock serialises
appenders, also across processes sharing one PostgreSQL database.

Cutting off the newest rows (and setting the head back) needs no key, so the head
is also anchored outside the database: every process that appended writes the
newest event's id and hash, with a MAC, to the anchor file and the log (the daemon
once a minute, a CLI command when it ends). `verify` fails when the chain no longer
reaches the anchored event. An anchor is only moved forward along an intact chain.

A full disk must not make the trail an outage nor lose events: an event that is a
transaction of its own (a read, a login, a refusal; `record`) and that the database
cannot take for lack of space is held in memory, bounded, and appended in order by
`flush` (the daemon tries every second, every process at its end) once there is
room; its time is the time it happened. An event that belongs to a change commits
with the change or not at all (`append`), so a change the database cannot take is
refused with NoSpace, event and all.

Chains from before the key (plain SHA-256) are re-chained under the key once, at
the first start with the key loaded, after their plain chain was checked; the
event recording that says whether it verified. Only an appliance that has never
anchored its chain can have such a chain: with an anchor file present, a head
marked plain was set back in the database, and nothing is re-chained (verify fails).
"""
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeAlias, TypedDict

from sqlalchemy import ColumnElement, Table, and_, bindparam, or_, select, true, update
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import Database, repo
from strongroom.appliance.db.dml import rowcount
from strongroom.appliance.db.hotpath import HotPath
from strongroom.appliance.db.models import AuditEvent, AuditHead, Base
from strongroom.appliance.errors import BadRequest, NotFound
from strongroom.appliance.service.audit_held import Fields, HeldEvents
from strongroom.appliance.service.renames import Alias

log = logging.getLogger("strongroom.audit")

GENESIS = "0" * 64
# Every action the appliance writes to the trail (tests/unit/test_audit_actions.py holds the
# code to it); `strongroom audit list --action` takes only these, and those in the trail.
ACTIONS = (
    # logins, and what an SSH client may ask for but never gets
    "login", "shell", "exec",
    # the Session's operations; those not audited when they succeed are when refused
    "stat", "list", "read", "open-write", "write", "mkdir", "delete", "rename",
    "rename-to", "copy", "copy-to", "discard", "set-mtime", "versions", "restore", "usage",
    "props", "proppatch", "lock", "lock-refresh", "unlock",
    # the admin's changes
    "client-add", "client-set", "client-rename", "library-add", "library-publish",
    "library-remove", "user-add", "user-set", "user-rename", "user-remove", "user-passwd",
    "user-totp-reset", "user-disable", "user-enable", "user-unlock", "app-password-create",
    "app-password-revoke", "key-add", "key-remove", "acl-grant", "acl-revoke", "acl-drop",
    "lock-clear", "doctor-repair",
    # offboarding a client (service.admin_remove)
    "client-remove",
    # a client's tree exported (service.export)
    "client-export",
    # maintenance: retention, trash expiry, the history budget, orphan blobs
    # (service.maintenance)
    "purge-version", "purge-trash", "purge-blob",
    # notifications: a test email sent by the admin, how often a user hears of changes
    # (service.admin_notify)
    "notify-test", "user-notify",
    # the portal: logging out, a form refused for lack of its token
    "logout", "csrf-refused",
    # a user's own account (service.account) and invitations (service.invitations)
    "password-change", "totp-enrol", "drive-session-end", "web-session-end",
    "invite-accepted", "invite-refused",
    # pinned versions, which retention never removes (service.admin_versions)
    "version-pin", "version-unpin",
    # backups (service.backup, service.backup_restore)
    "backup-create", "backup-restore",
    # key rotation (service.keys_rotation): key ids and counts only
    "keys-rotate-master", "keys-rotate-client",
    # the recovery key (service.recovery)
    "keys-export-recovery", "keys-import-recovery", "keys-move",
    # the trail itself
    "audit-rekey",
)
_FIELDS = ("ts", "actor", "protocol", "address", "action", "path", "outcome", "detail")


# An event as `events` returns it and `audit list --json` prints it: "id", the Fields,
# "prev_hash" and "hash" (the CLI adds "time"); values are JSON values.
Event: TypeAlias = dict[str, Any]


class End(TypedDict):
    """The chain's end: its newest event's id and hash, and how many events it has."""
    id: int
    count: int
    hash: str


class Anchor(End):
    """The anchor file: the end, when it was written, and the MAC of both."""
    at: float
    mac: str


def _body(fields: Mapping[str, object]) -> bytes:
    return json.dumps([fields[k] for k in _FIELDS], ensure_ascii=False,
                      separators=(",", ":")).encode()


def _plain_digest(prev_hash: str, fields: Fields) -> str:
    """The digest of chains from before the key (for re-chaining them only)."""
    return hashlib.sha256(prev_hash.encode() + _body(fields)).hexdigest()


# Statements built once (with bound parameters they keep their compiled form).
_ADVANCE = (update(AuditHead).where(AuditHead.id == 1,
                                    AuditHead.last_hash == bindparam("prev"))
            .values(count=AuditHead.count + 1, last_hash=bindparam("digest"))
            .execution_options(synchronize_session=False))
_LOCK_HEAD = (update(AuditHead).where(AuditHead.id == 1).values(count=AuditHead.count + 1)
              .returning(AuditHead.last_hash).execution_options(synchronize_session=False))
_SET_HEAD = (update(AuditHead).where(AuditHead.id == 1).values(last_hash=bindparam("digest"))
             .execution_options(synchronize_session=False))
_HOLD_HEAD = (update(AuditHead).where(AuditHead.id == 1).values(count=AuditHead.count)
              .execution_options(synchronize_session=False))
_EVENTS: Table = Base.metadata.tables[AuditEvent.__tablename__]
_INSERT = _EVENTS.insert()


class Verdict(NamedTuple):
    events: int              # events that verified before the first problem
    bad: int | None          # id of the first bad event, -1 for a cut-off end, None if fine
    problem: str | None      # what is wrong, for a person


class Chain(HeldEvents):
    """Appends to, verifies and anchors one appliance's audit chain."""

    def __init__(self, key: bytes, anchor_file: Path):
        self._key = key
        self._anchor_file = Path(anchor_file)
        # The chain's end as this process last wrote it: a guess that saves a round
        # trip. _ADVANCE applies only if the head still holds it, so a stale guess
        # costs the slow path, never a broken chain.
        self._last_written: str | None = None
        self._unanchored = False
        self._anchoring = threading.Lock()
        HeldEvents.__init__(self)

    def digest(self, prev_hash: str, fields: Fields) -> str:
        return hmac.new(self._key, prev_hash.encode() + _body(fields), hashlib.sha256).hexdigest()

    # -- appending ----------------------------------------------------------------------

    def append(self, s: HotPath | OrmSession, *, actor: str, protocol: str,
               address: str | None, action: str, path: str | None = None,
               outcome: str = "ok", detail: str | None = None) -> None:
        """Add one event inside the caller's write transaction (an ORM session or an
        appliance.db.fast.Fast). An ORM session runs the statements itself, not on its
        connection(): the ORM-enabled UPDATE of the head flushes its pending changes
        first, as it always did, so rows are locked in the same order as before."""
        self._append(s, Fields(ts=round(time.time(), 6), actor=actor, protocol=protocol,
                               address=address, action=action, path=path, outcome=outcome,
                               detail=detail))

    def _append(self, s: HotPath | OrmSession, fields: Fields) -> None:
        prev = self._last_written
        digest = self.digest(prev, fields) if prev is not None else None
        if digest is None or rowcount(s.execute(_ADVANCE,
                                                {"prev": prev, "digest": digest})) != 1:
            # One statement takes the row lock and reads the chain's end (the migration
            # made the row); the lock is held until the caller commits.
            prev = s.execute(_LOCK_HEAD).scalar_one()
            digest = self.digest(prev, fields)
            s.execute(_SET_HEAD, {"digest": digest})
        # Inserted while the head row is locked: event ids follow the chain's order.
        s.execute(_INSERT, dict(prev_hash=prev, hash=digest, **fields))
        self._last_written = digest
        self._unanchored = True

    # -- verifying ----------------------------------------------------------------------

    def verify(self, s: OrmSession) -> Verdict:
        """Walk the whole chain, then check its end against the head row and the anchor."""
        prev, count = GENESIS, 0
        for ev in s.scalars(select(AuditEvent).order_by(AuditEvent.id)).yield_per(1000):
            if ev.prev_hash != prev or self.digest(prev, _fields(ev)) != ev.hash:
                return Verdict(count, ev.id, f"event {ev.id} was altered or removed, or one "
                                             f"before it was")
            prev, count = ev.hash, count + 1
        head = s.get(AuditHead, 1)
        if head is not None and head.scheme != "hmac":
            return Verdict(count, -1, "the database marks the chain as unkeyed although it "
                                      "was keyed and anchored: it was rewritten")
        if head is not None and head.last_hash != prev:
            return Verdict(count, -1, "the newest events were cut off")
        problem = self._anchor_problem(s, count)
        return Verdict(count, -1 if problem else None, problem)

    def _anchor_problem(self, s: OrmSession, count: int) -> str | None:
        anchor, problem = self._read_anchor()
        if problem:
            return problem
        if anchor is None:
            return None if count == 0 else f"there is no anchor file {self._anchor_file}"
        if s.scalar(select(AuditEvent.hash).where(AuditEvent.id == anchor["id"])) \
                != anchor["hash"] or count < anchor["count"]:
            return (f"the newest events were cut off: event {anchor['id']}, anchored at "
                    f"{_when(anchor['at'])}, is no longer in the chain")
        return None

    # -- anchoring ----------------------------------------------------------------------

    def anchor(self, db: Database) -> None:
        """Write the chain's end to the anchor file and the log if this process appended
        since its last anchor, after checking the chain from the old anchor to it.
        Held events are written first (`flush`); those that still cannot be are
        named in the log."""
        if self._held and not self.flush(db):
            log.error("audit trail: %d events held in memory cannot be written yet (the "
                      "database's disk is full)", len(self._held))
        with self._anchoring:
            if not self._unanchored:
                return
            self._unanchored = False
            old, problem = self._read_anchor()
            if problem:
                log.error("audit trail: %s; the anchor is left as it is", problem)
                return
            with db.read() as s:
                end = self._walk_from(s, old)
            if end is None:
                log.error("audit trail: the chain no longer continues from its anchor "
                          "(event %s); the anchor is left as it is", old and old["id"])
                return
            old_end = None if old is None else \
                End(id=old["id"], count=old["count"], hash=old["hash"])
            if end["count"] and end != old_end:
                self._write_anchor(end)

    def _walk_from(self, s: OrmSession, old: Anchor | None) -> End | None:
        """{id, count, hash} of the chain's end, checking each event after `old`; None
        if the chain does not continue from it."""
        prev, count, last_id = GENESIS, 0, 0
        if old is not None:
            if s.scalar(select(AuditEvent.hash).where(AuditEvent.id == old["id"])) != old["hash"]:
                return None
            prev, count, last_id = old["hash"], old["count"], old["id"]
        q = select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id)
        for ev in s.scalars(q).yield_per(1000):
            if ev.prev_hash != prev or self.digest(prev, _fields(ev)) != ev.hash:
                return None
            prev, count, last_id = ev.hash, count + 1, ev.id
        return End(id=last_id, count=count, hash=prev)

    def _mac(self, anchor: Mapping[str, object]) -> str:
        message = f"anchor\0{anchor['id']}\0{anchor['count']}\0{anchor['hash']}\0{anchor['at']}"
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def _write_anchor(self, end: End) -> None:
        anchor = Anchor(id=end["id"], count=end["count"], hash=end["hash"],
                        at=round(time.time(), 3), mac="")
        anchor["mac"] = self._mac(anchor)     # of the fields before it
        tmp = self._anchor_file.with_name(self._anchor_file.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(anchor, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._anchor_file)
        except OSError as e:
            log.error("audit trail: cannot write the anchor %s: %s", self._anchor_file,
                      e.strerror)
            return
        log.info("audit anchor: event %d, %d events, hash %s", anchor["id"], anchor["count"],
                 anchor["hash"])

    def _read_anchor(self) -> tuple[Anchor | None, str | None]:
        """(anchor or None if there is none, problem or None). An anchor whose MAC
        verifies has the fields, of the types, that a process with the key wrote."""
        try:
            anchor = json.loads(self._anchor_file.read_text("utf-8"))
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError) as e:
            return None, f"cannot read the anchor file {self._anchor_file}: {e}"
        if not isinstance(anchor, dict) or not hmac.compare_digest(
                str(anchor.get("mac", "")), self._mac_or_empty(anchor)):
            return None, f"the anchor file {self._anchor_file} was altered"
        return Anchor(id=anchor["id"], count=anchor["count"], hash=anchor["hash"],
                      at=anchor["at"], mac=anchor["mac"]), None

    def _mac_or_empty(self, anchor: Mapping[str, object]) -> str:
        try:
            return self._mac(anchor)
        except KeyError:
            return ""

    # -- re-chaining a chain from before the key -----------------------------------------

    def upgrade(self, db: Database) -> None:
        """Re-chain a plain SHA-256 chain under the key, once (see the module docstring)."""
        with db.read() as s:
            head = s.get(AuditHead, 1)
            if head is None or head.scheme == "hmac":
                return
        if self._anchor_file.exists():
            log.error("audit trail: the database marks the chain as unkeyed, but it was "
                      "anchored (%s): someone set it back; it is not re-chained",
                      self._anchor_file)
            return
        with db.write() as s:
            s.execute(_HOLD_HEAD)        # the row lock: appenders and other upgraders wait
            head = s.get(AuditHead, 1)
            if head is None or head.scheme == "hmac":   # another process re-chained it
                return
            count, broken = self._rechain(s)
            head.scheme = "hmac"
            s.flush()
            if not count:
                return   # a new appliance: nothing to say
            detail = (f"{count} events re-chained under the key; the plain chain before "
                      + (f"was broken at event {broken}" if broken else "verified"))
            self.append(s, actor="strongroom", protocol="system", address=None,
                        action="audit-rekey", outcome="failed" if broken else "ok",
                        detail=detail)
        (log.error if broken else log.info)("audit trail: %s", detail)

    def _rechain(self, s: OrmSession) -> tuple[int, int | None]:
        old_prev, new_prev, count, broken = GENESIS, GENESIS, 0, None
        for ev in s.scalars(select(AuditEvent).order_by(AuditEvent.id)).all():
            fields = _fields(ev)
            if broken is None and (ev.prev_hash != old_prev
                                   or _plain_digest(old_prev, fields) != ev.hash):
                broken = ev.id
            old_prev = ev.hash
            ev.prev_hash, ev.hash = new_prev, self.digest(new_prev, fields)
            new_prev, count = ev.hash, count + 1
        s.execute(_SET_HEAD, {"digest": new_prev})
        self._last_written = new_prev
        return count, broken


def _fields(ev: AuditEvent) -> Fields:
    return Fields(ts=ev.ts, actor=ev.actor, protocol=ev.protocol, address=ev.address,
                  action=ev.action, path=ev.path, outcome=ev.outcome, detail=ev.detail)


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def check_filters(s: OrmSession, *, actor: str | None = None,
                  action: str | None = None) -> None:
    """Refuse a filter that can never match, rather than answer an empty list: an
    action the appliance does not write, a login that is no user and never acted."""
    if action is not None and action not in ACTIONS and not _in_trail(s, AuditEvent.action,
                                                                      action):
        raise BadRequest(f"no such audit action: {action} (the actions: "
                         f"{', '.join(sorted(ACTIONS))})")
    if actor is not None and not _in_trail(s, AuditEvent.actor, actor) \
            and repo.user_by_login(s, actor) is None:
        raise NotFound(f"no user {actor} and no event by {actor} in the audit trail")


def _in_trail(s: OrmSession, column: InstrumentedAttribute[str], value: str) -> bool:
    return s.scalar(select(AuditEvent.id).where(column == value).limit(1)) is not None


def events(s: OrmSession, *, actor: str | Sequence[Alias] | None = None,
           client: str | Sequence[Alias] | None = None, action: str | None = None,
           outcome_not_ok: bool = False, since: float | None = None,
           limit: int | None = None) -> list[Event]:
    """Events, oldest first, filtered: by who, by client tree (its '/<client>' paths),
    by action, only refusals and failures, from a time on; `limit` keeps the newest
    that many. `actor` and `client` are a name, or the session.renames.Alias list
    of the names one user or client had (each counts only while it was held)."""
    q = select(AuditEvent)
    if actor is not None:
        q = q.where(_named(actor, lambda name: AuditEvent.actor == name))
    if client is not None:
        q = q.where(_named(client, lambda name: (AuditEvent.path == f"/{name}")
                           | AuditEvent.path.startswith(f"/{name}/", autoescape=True)))
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
    return [dict(id=ev.id, **_fields(ev), prev_hash=ev.prev_hash, hash=ev.hash) for ev in rows]


def _named(names: str | Sequence[Alias],
           condition: Callable[[str], ColumnElement[bool]]) -> ColumnElement[bool]:
    """`condition(name)` for one name, or for any Alias while it was held."""
    if isinstance(names, str):
        return condition(names)
    return or_(*(and_(condition(a.name),
                      AuditEvent.ts >= a.since if a.since is not None else true(),
                      AuditEvent.ts < a.until if a.until is not None else true())
                 for a in names))
