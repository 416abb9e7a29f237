"""Routing: once a tree has been quiet for [notify] quiet_period, its events go to
the people who are to hear of them (notify_deliveries), and, with [notify]
webhook_url, into one webhook POST (a notify_digests row of kind "webhook").

Who hears of a change (the issue's rules; whether each may see the name is decided
per recipient when the digest is built, appliance.notify.digests):
- made by staff (or the administrator) in a client's tree: that client's users;
- made by a client user: the staff users (those with the read right, at build time);
- in a library: the users of every client that sees the library;
- never the user who made it; nobody disabled, without an email address, of a
  disabled client, or whose frequency is off.
An event whose file a failed copy removed for good (its node is gone) tells nobody.

Several processes may route at once: a batch is claimed by one UPDATE ... RETURNING
of the events still unrouted, so each event is routed once.
"""
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, insert, or_, select, update
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.models import (Client, LibraryMember, Node, NotifyDelivery,
                                            NotifyDigest, NotifyEvent, User)
from strongroom.appliance.notify import lines, outbox

if TYPE_CHECKING:
    from strongroom.appliance.app import App

MAX_WEBHOOK_LINES = 1000


def route(app: "App", now: float | None = None) -> int:
    """Route the events of every tree that has been quiet long enough; return how
    many trees' batches this call routed."""
    now = time.time() if now is None else now
    cut = now - app.config.notify.quiet_period
    with app.db.read() as s:
        trees = s.execute(select(NotifyEvent.client_id, func.max(NotifyEvent.ts),
                                 func.max(NotifyEvent.id))
                          .where(NotifyEvent.routed_at.is_(None))
                          .group_by(NotifyEvent.client_id)).all()
    return sum(_route(app, client_id, last_id, now)
               for client_id, last_ts, last_id in trees if last_ts <= cut)


def _route(app: "App", client_id: int, last_id: int, now: float) -> int:
    with app.db.write() as s:
        ids = list(s.scalars(
            update(NotifyEvent)
            .where(NotifyEvent.client_id == client_id, NotifyEvent.routed_at.is_(None),
                   NotifyEvent.id <= last_id)
            .values(routed_at=now).returning(NotifyEvent.id)
            .execution_options(synchronize_session=False)))
        tree = s.get(Client, client_id)
        if not ids or tree is None:
            return 0
        events = _live_events(s, ids)
        told_of_staff, told_of_clients = _audiences(s, tree)
        rows = [{"event_id": e.id, "user_id": u.id, "digest_id": None}
                for e in events
                for u in (told_of_clients if e.actor_role == "client" else told_of_staff)
                if u.id != e.actor_id]
        if rows:
            s.execute(insert(NotifyDelivery), rows)
        if app.config.notify.webhook_url and events:
            s.add(_webhook(tree, events, now))
    return 1


def _live_events(s: OrmSession, ids: Sequence[int]) -> list[lines.Event]:
    """The events `ids` whose node still exists (a failed copy deletes its own)."""
    rows = s.scalars(select(NotifyEvent).join(Node, Node.id == NotifyEvent.node_id)
                     .where(NotifyEvent.id.in_(ids)).order_by(NotifyEvent.id))
    return [event(r) for r in rows]


def event(r: NotifyEvent) -> lines.Event:
    return lines.Event(r.id, r.client_id, r.node_id, r.is_dir, r.path, r.old_path, r.action,
                       r.actor, r.actor_id, r.actor_role, r.size, r.ts)


def _reachable() -> ColumnElement[bool]:
    return (User.disabled.is_(False)) & User.email.is_not(None) & (User.email != "") & \
        or_(User.notify_frequency.is_(None), User.notify_frequency != "off")


def _audiences(s: OrmSession, tree: Client) -> tuple[list[User], list[User]]:
    """(who hears of changes made by staff or the admin, who hears of changes made
    by client users) in `tree`."""
    staff = list(s.scalars(select(User).where(User.role == "staff", _reachable())))
    clients = select(Client.id).where(Client.kind == "client", Client.disabled.is_(False))
    if tree.kind == "library":
        if not tree.shared_with_all:
            clients = clients.where(Client.id.in_(select(LibraryMember.client_id).where(
                LibraryMember.library_id == tree.id)))
    else:
        clients = clients.where(Client.id == tree.id)
    users = list(s.scalars(select(User).where(User.role == "client", _reachable(),
                                              User.client_id.in_(clients))))
    return users, staff


def _webhook(tree: Client, events: list[lines.Event], now: float) -> NotifyDigest:
    """The webhook POST of a batch: every line, as the firm's own system sees it."""
    found = lines.coalesce(events)
    shown = found[:MAX_WEBHOOK_LINES]
    message_id = outbox.message_id()
    body = {"id": message_id, "tree": tree.name, "display_name": tree.display_name or tree.name,
            "kind": tree.kind, "ts": now, "more": len(found) - len(shown),
            "changes": [{"action": line.action, "path": line.path, "old_path": line.old_path,
                         "is_dir": line.is_dir, "size": line.size, "by": line.actors,
                         "ts": line.ts} for line in shown]}
    return NotifyDigest(kind="webhook", user_id=None, message_id=message_id,
                        payload=json.dumps(body, ensure_ascii=False, sort_keys=True),
                        lines=len(found), state="pending", attempts=0, next_attempt_at=now,
                        claimed_until=0.0, created_at=now)
