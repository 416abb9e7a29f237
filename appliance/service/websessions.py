"""Portal sessions: a browser that logged in with password and code holds a random
cookie; the database keeps its SHA-256, its CSRF token, and when it ends.

A session ends after `[web] session_idle` without a request, `[web] session_lifetime`
after its login, at logout, when its user is disabled, removed or has its client
disabled, and when the password changes. Kept in the database, so any process of
the daemon, and the daemon after a restart, knows it. Every login makes a new id:
a cookie set before the login is never the session's.
"""
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, or_, select, update

from strongroom.appliance.db import Database
from strongroom.appliance.db.dml import rowcount
from strongroom.appliance.db.models import User, WebSession
from strongroom.appliance.service.login import barred, principal_for
from strongroom.appliance.service.principal import Principal

TOUCH_SECONDS = 30      # how often a session's last use is written


class WebOptions(Protocol):
    """The [web] options sessions follow (seconds)."""
    @property
    def session_idle(self) -> float: ...
    @property
    def session_lifetime(self) -> float: ...


@dataclass(frozen=True)
class WebLogin:
    """A live portal session: who, its CSRF token, and its row id (for the account page).
    `language` is the account's own choice (users.language), None when it has none."""
    principal: Principal
    csrf: str
    session_id: int
    created_at: float
    language: str | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WebSessions:
    def __init__(self, db: Database, cfg: WebOptions) -> None:
        self._db, self._cfg = db, cfg

    def open(self, principal: Principal, address: str | None,
             user_agent: str | None) -> str:
        """A new session for a completed login; returns the cookie value."""
        assert principal.user_id is not None, "only users log in to the portal"
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._db.write() as db:
            db.add(WebSession(user_id=principal.user_id, token_sha256=digest(token),
                              csrf=secrets.token_urlsafe(32), address=address,
                              user_agent=(user_agent or "")[:200] or None, created_at=now,
                              last_used_at=now, expires_at=now + self._cfg.session_lifetime))
        return token

    def find(self, token: str | None) -> WebLogin | None:
        """The live session of cookie `token`, or None (unknown, idle, too old, or its
        account may no longer log in: then the row goes)."""
        if not token or len(token) > 100:
            return None
        now = time.time()
        with self._db.read() as db:
            row = db.scalar(select(WebSession).where(WebSession.token_sha256 == digest(token)))
            if row is None:
                return None
            user = db.get(User, row.user_id)
            alive = (user is not None and not barred(user) and row.expires_at > now
                     and row.last_used_at + self._cfg.session_idle > now)
            login = (WebLogin(principal_for(user), row.csrf, row.id, row.created_at,
                              language=user.language)
                     if alive and user is not None else None)
            # written at most every TOUCH_SECONDS, but well within the idle limit
            stale = now - row.last_used_at > min(TOUCH_SECONDS, self._cfg.session_idle / 4)
        if login is None:
            self.end(token)
        elif stale:
            with self._db.write() as db:
                db.execute(update(WebSession).where(WebSession.id == login.session_id)
                           .values(last_used_at=now))
        return login

    def set_language(self, user_id: int, language: str) -> bool:
        """Remember `language` as the user's own (users.language, what the portal uses
        when the browser has no choice of its own); whether it changed."""
        with self._db.write() as db:
            return rowcount(db.execute(update(User).where(
                User.id == user_id, or_(User.language.is_(None), User.language != language))
                .values(language=language))) > 0

    def end(self, token: str) -> None:
        with self._db.write() as db:
            db.execute(delete(WebSession).where(WebSession.token_sha256 == digest(token)))

    def end_all(self, user_id: int, *, keep: int | None = None) -> int:
        """End every session of a user (but `keep`, the one asking); how many ended."""
        with self._db.write() as db:
            q = delete(WebSession).where(WebSession.user_id == user_id)
            if keep is not None:
                q = q.where(WebSession.id != keep)
            return rowcount(db.execute(q))

    def of_user(self, user_id: int) -> list[dict[str, object]]:
        now = time.time()
        with self._db.read() as db:
            rows = db.scalars(select(WebSession).where(WebSession.user_id == user_id)
                              .order_by(WebSession.created_at)).all()
            return [{"id": r.id, "address": r.address, "user_agent": r.user_agent,
                     "created_at": r.created_at, "last_used_at": r.last_used_at}
                    for r in rows if r.expires_at > now
                    and r.last_used_at + self._cfg.session_idle > now]
