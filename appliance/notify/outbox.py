"""The outbox: rows written in the transaction that commits a change, so that a change
is notified if and only if it happened (a transactional outbox).

`Change` describes a change to a file or folder in a tree; `record` writes it as a
notify_events row, or nothing for editor and OS litter ([notify] ignore) — a rename
between a litter name and a real one counts as the real name appearing or going.
`security` queues a notice to a user's own address (a notify_digests row due at
once). Both run Core INSERTs on the caller's transaction: an ORM session or a hot
path one (appliance.db.fast), never a transaction of their own. The sender
(appliance.notify.sender) takes it from there.
"""
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Table, bindparam, select

from strongroom.appliance.db.hotpath import HotPath
from strongroom.appliance.db.models import Base, NotifyDigest, NotifyEvent, User
from strongroom.appliance.notify.ignore import ignored

_EVENTS: Table = Base.metadata.tables[NotifyEvent.__tablename__]
_DIGESTS: Table = Base.metadata.tables[NotifyDigest.__tablename__]
_USERS: Table = Base.metadata.tables[User.__tablename__]
# Module constants: the hot path compiles each statement once.
_ADD_EVENT = _EVENTS.insert()
_ADD_DIGEST = _DIGESTS.insert()
_EMAIL = select(_USERS.c.email).where(_USERS.c.id == bindparam("user_id"))

# What a security notice is about (appliance.notify.render words each).
SECURITY = ("password-changed", "totp-enrolled", "totp-reset", "totp-removed",
            "app-password-created", "account-blocked")


@dataclass(frozen=True)
class Actor:
    """Who made a change: a login, its role (admin, staff or client) and user id."""
    login: str
    role: str
    user_id: int | None = None


@dataclass(frozen=True)
class Change:
    """A change in tree `client_id` to node `node_id` at `rel` (names inside the tree).
    `action`: added, changed, deleted, or renamed (from `old`). `replaced`: for a file
    renamed onto another file, the node that took the moved file's versions."""
    client_id: int
    node_id: int
    rel: tuple[str, ...]
    action: str
    is_dir: bool = False
    size: int | None = None
    old: tuple[str, ...] | None = None
    replaced: int | None = None


def record(db: HotPath, patterns: Iterable[str], actor: Actor, change: Change) -> None:
    """Write the notify_events rows of `change` (none for litter) in `db`'s transaction."""
    patterns = tuple(patterns)
    if change.action != "renamed" or change.old is None:
        if not _litter(change.rel, patterns):
            _insert(db, actor, change, change.action, change.rel)
        return
    old_litter, new_litter = _litter(change.old, patterns), _litter(change.rel, patterns)
    if old_litter and new_litter:
        return
    if new_litter:                       # a document moved away under a litter name
        _insert(db, actor, change, "deleted", change.old)
    elif old_litter:                     # a temporary file moved onto a document's name
        _insert(db, actor, change, "changed" if change.replaced else "added", change.rel,
                node_id=change.replaced)
    elif change.replaced is not None:    # one document renamed onto another
        _insert(db, actor, change, "deleted", change.old)
        _insert(db, actor, change, "changed", change.rel, node_id=change.replaced)
    else:
        _insert(db, actor, change, "renamed", change.rel, old=change.old)


def _litter(rel: tuple[str, ...], patterns: tuple[str, ...]) -> bool:
    return bool(rel) and ignored(rel[-1], patterns)


def _insert(db: HotPath, actor: Actor, change: Change, action: str, rel: tuple[str, ...],
            *, node_id: int | None = None, old: tuple[str, ...] | None = None) -> None:
    db.execute(_ADD_EVENT, dict(
        client_id=change.client_id, node_id=node_id or change.node_id, is_dir=change.is_dir,
        path=_text(rel), old_path=None if old is None else _text(old), action=action,
        actor=actor.login, actor_id=actor.user_id, actor_role=actor.role, size=change.size,
        ts=time.time(), routed_at=None))


def _text(rel: tuple[str, ...]) -> str:
    return "/" + "/".join(rel)


def security(db: HotPath, user_id: int, what: str, *, protocol: str | None = None,
             address: str | None = None) -> bool:
    """Queue a notice about `what` (one of SECURITY) to user `user_id`'s own address,
    due at once; False (nothing queued) for a user without an address."""
    assert what in SECURITY, what
    if not db.scalar(_EMAIL, {"user_id": user_id}):
        return False
    now = time.time()
    db.execute(_ADD_DIGEST, dict(
        kind="security", user_id=user_id, message_id=message_id(), subject=None,
        body_text=None, body_html=None, lines=1, state="pending", attempts=0,
        next_attempt_at=now, claimed_until=0.0, failing_since=None, last_error=None,
        reply=None, created_at=now, sent_at=None,
        payload=json.dumps({"what": what, "ts": now, "protocol": protocol,
                            "address": address})))
    return True


def message_id() -> str:
    """A new message's Message-ID: random, so it is the same on every attempt to send
    that message and never another's (the domain is added when it is sent)."""
    return f"strongroom.{secrets.token_hex(12)}"


# How often a user hears of changes: "immediate" once the tree has been quiet for
# [notify] quiet_period, the others at most once a period (appliance.notify.digests).
FREQUENCIES = ("off", "immediate", "hourly", "daily", "weekly")
PERIODS = {"immediate": 0.0, "hourly": 3600.0, "daily": 86400.0, "weekly": 7 * 86400.0}


def frequency(role: str, chosen: str | None) -> str:
    """A user's frequency: the one chosen, else `immediate` for client users and
    `daily` for staff."""
    if chosen in FREQUENCIES:
        return chosen
    return "immediate" if role == "client" else "daily"
