"""Digests: each user's waiting deliveries (appliance.notify.routing) become one
message once the user's frequency allows (immediate: at once; hourly, daily,
weekly: once that long has passed since the user's last digest; off: never).

A recipient only ever reads names they may see: every event is decided with the
service layer's own access decision for that recipient (`Session.may`, as a Session
of the recipient over protocol "notify" would decide: the read right for a file, the
list right for a folder, in the recipient's view of the trees), when the digest is
built. A rename is shown as such only if both names may be seen; otherwise as the
name appearing or going. A digest with nothing left to show is not sent (skipped).

The message is rendered once, when the digest is made (appliance.notify.render), so
every attempt to send it is the same message with the same Message-ID. Several
processes may build at once: the deliveries are claimed by one UPDATE ... RETURNING,
and a builder that did not get all it read gives up until the next round.
"""
import dataclasses
import time
from collections import defaultdict
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.models import Client, NotifyDelivery, NotifyDigest, NotifyEvent, User
from strongroom.appliance.notify import lines, outbox, render
from strongroom.appliance.notify.routing import event
from strongroom.appliance.service.principal import Principal
from strongroom.appliance.service.service import Session

if TYPE_CHECKING:
    from strongroom.appliance.app import App
    from strongroom.config import Config


class _Raced(Exception):
    """Another process claimed some of the deliveries this one read."""


def portal_base(cfg: "Config") -> str | None:
    """https://<public name or host>:<port> of the web portal, or None when it is off."""
    if not cfg.web.enabled:
        return None
    host = cfg.server.public_name or cfg.server.host
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{cfg.server.webdav_port}"


def build_due(app: "App", now: float | None = None) -> int:
    """Make the digests that are due; return how many were made (skipped ones too)."""
    now = time.time() if now is None else now
    with app.db.read() as s:
        waiting = list(s.scalars(select(NotifyDelivery.user_id)
                                 .where(NotifyDelivery.digest_id.is_(None)).distinct()))
    return sum(_build(app, user_id, now) for user_id in waiting)


def _due(s: OrmSession, user: User, now: float) -> bool:
    chosen = outbox.frequency(user.role, user.notify_frequency)
    if chosen == "off":
        return True           # dropped (skipped): whatever waited was never to be sent
    last = s.scalar(select(func.max(NotifyDigest.created_at)).where(
        NotifyDigest.user_id == user.id, NotifyDigest.kind == "changes",
        NotifyDigest.state != "skipped"))
    return last is None or now - last >= outbox.PERIODS[chosen]


def _build(app: "App", user_id: int, now: float) -> int:
    with app.db.read() as s:
        user = s.get(User, user_id)
        if user is None or not _due(s, user, now):
            return 0
        rows = list(s.scalars(select(NotifyEvent).join(
            NotifyDelivery, NotifyDelivery.event_id == NotifyEvent.id).where(
            NotifyDelivery.user_id == user_id, NotifyDelivery.digest_id.is_(None))))
        events = [event(r) for r in rows]
        off = outbox.frequency(user.role, user.notify_frequency) == "off"
        principal = Principal(login=user.login, role=user.role,
                              client=user.client.name if user.client else None,
                              user_id=user.id, client_id=user.client_id)
        lang, name = user.language or "en", user.display_name or user.login
        trees = {c.id: c for c in s.scalars(select(Client).where(
            Client.id.in_({e.client_id for e in events})))}
        names = _display_names(s, {e.actor for e in events})
    words = None if off else _words(app, principal, lang, name, events, trees, names)
    try:
        with app.db.write() as s:
            _store(s, user_id, [e.id for e in events], words, now)
    except _Raced:
        return 0
    return 1


def _store(s: OrmSession, user_id: int, event_ids: list[int],
           found: "tuple[render.Text, int] | None", now: float) -> None:
    digest = NotifyDigest(
        kind="changes", user_id=user_id, message_id=outbox.message_id(), state="skipped",
        lines=0, attempts=0, next_attempt_at=now, claimed_until=0.0, created_at=now)
    if found is not None:
        words, digest.lines, digest.state = found[0], found[1], "pending"
        digest.subject, digest.body_text, digest.body_html = words.subject, words.text, words.html
    s.add(digest)
    s.flush()
    claimed = set(s.scalars(
        update(NotifyDelivery).where(NotifyDelivery.user_id == user_id,
                                     NotifyDelivery.event_id.in_(event_ids),
                                     NotifyDelivery.digest_id.is_(None))
        .values(digest_id=digest.id).returning(NotifyDelivery.event_id)
        .execution_options(synchronize_session=False)))
    if claimed != set(event_ids):
        raise _Raced()


def _display_names(s: OrmSession, logins: set[str]) -> dict[str, str]:
    rows = s.execute(select(User.login, User.display_name).where(User.login.in_(logins)))
    return {login: shown or login for login, shown in rows}


def _words(app: "App", principal: Principal, lang: str, name: str,
           events: list[lines.Event], trees: dict[int, Client],
           names: dict[str, str]) -> "tuple[render.Text, int] | None":
    """The digest's words and line count, or None when the recipient may see none of it."""
    session = app.session(principal, "notify")
    try:
        seen = [e for e in (_as_seen(session, trees, e) for e in events) if e is not None]
        by_tree: dict[int, list[render.Shown]] = defaultdict(list)
        for line in lines.coalesce(seen):
            shown = _shown(session, trees[line.client_id], line, names)
            if shown is not None:
                by_tree[line.client_id].append(shown)
    finally:
        session.close()
    if not by_tree:
        return None
    sections = sorted((render.Section(_tree_name(trees[cid]), shown)
                       for cid, shown in by_tree.items()), key=lambda sec: sec.tree.lower())
    words = render.changes(lang, name, sections, portal_base(app.config))
    return words, sum(len(sec.lines) for sec in sections)


def _tree_name(tree: Client) -> str:
    return tree.display_name or tree.name


def _view(session: Session, tree: Client, path: str, is_dir: bool) -> str | None:
    """`path` of `tree` in the recipient's view if the recipient may see it, else None."""
    view = session.view_of(f"/{tree.name}{path}")
    if view is None or not session.may("list" if is_dir else "read", view):
        return None
    return view


def _as_seen(session: Session, trees: dict[int, Client], e: lines.Event) -> lines.Event | None:
    """`e` as the recipient may know it: as it is, as a name appearing or going (a
    rename of which one side is hidden), or None."""
    tree = trees.get(e.client_id)
    if tree is None:
        return None
    new = _view(session, tree, e.path, e.is_dir)
    if e.action != "renamed" or e.old_path is None:
        return e if new is not None else None
    old = _view(session, tree, e.old_path, e.is_dir)
    if new is not None and old is not None:
        return e
    if new is not None:
        return dataclasses.replace(e, action="added", old_path=None)
    if old is not None:
        return dataclasses.replace(e, action="deleted", path=e.old_path, old_path=None)
    return None


def _shown(session: Session, tree: Client, line: lines.Line,
           names: dict[str, str]) -> render.Shown | None:
    view = session.view_of(f"/{tree.name}{line.path}")
    if view is None:
        return None
    folder, _, base = view.rstrip("/").rpartition("/")
    old = None if line.old_path is None else session.view_of(f"/{tree.name}{line.old_path}")
    who = ", ".join(names.get(login, login) for login in line.actors[:3])
    if len(line.actors) > 3:
        who += ", …"
    return render.Shown(line.action, folder or "/", base, line.is_dir, line.size, who,
                        line.ts, old)
