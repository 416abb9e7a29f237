"""The names a client or user had: found in the audit trail's rename events, so
that `audit list --client NEW` (or `--user NEW`) also finds what was recorded
under an earlier name. Old events are never rewritten (the chain is keyed); the
filter follows the renames instead.

Names are unique at any moment, so walking back from the current name through
the rename events ('from=OLD to=NEW', newest first) finds exactly the names this
one client or user had, and when. The first name counts from the row's
creation: events of an earlier client or user of that name are not its own.
"""
import re
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import AuditEvent

_RENAME = re.compile(r"from=(?P<old>\S+) to=(?P<new>\S+)(?: .*)?")


class Alias(NamedTuple):
    """A name held from `since` until `until` (timestamps; None: no bound)."""
    name: str
    since: float | None
    until: float | None


def detail(old: str, new: str) -> str:
    """The detail of a rename event, as `aliases` reads it."""
    return f"from={old} to={new}"


def aliases(s: OrmSession, kind: str, name: str) -> list[Alias]:
    """The names of the client (kind "client", libraries too) or user (kind "user")
    called `name` now, newest first; just `name`, unbounded, if there is none."""
    row = repo.client_by_name(s, name) if kind == "client" else repo.user_by_login(s, name)
    if row is None:
        return [Alias(name, None, None)]
    events = s.execute(select(AuditEvent.ts, AuditEvent.detail).where(
        AuditEvent.action == f"{kind}-rename", AuditEvent.outcome == "ok",
        AuditEvent.ts >= row.created_at).order_by(AuditEvent.id.desc())).all()
    out, current, until = [], name, None
    for ts, text in events:
        m = _RENAME.fullmatch(text or "")
        if m and m["new"] == current:
            out.append(Alias(current, ts, until))
            current, until = m["old"], ts
    out.append(Alias(current, row.created_at, until))
    return out
