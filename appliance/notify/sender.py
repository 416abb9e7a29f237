"""The sender: a thread of the daemon that, every poll interval, routes the events of
quiet trees (appliance.notify.routing), makes the digests that are due
(appliance.notify.digests) and sends what is waiting: digests and security notices
by email (appliance.notify.mailer), webhook POSTs (appliance.notify.webhook).

Never lost, never twice:
- a message is claimed before it is sent (an UPDATE ... WHERE claimed_until < now,
  committed on its own), so several daemons sharing a database never send one
  message at once; the claim lapses after LEASE seconds, so a daemon killed while
  sending leaves it to the next one (or to itself, restarted);
- it is marked sent only after the server accepted it: a daemon killed between the
  two sends it once more, with the same Message-ID (at most one duplicate);
- a failure is retried after 6 poll intervals (a minute at the default), doubling up
  to an hour, until the message has failed for GIVE_UP seconds (a day): then it is
  marked failed, with one log line, and `strongroom notify status` shows it.
While [mail] host is empty nothing is mailed: changes are still recorded and routed,
and digests wait until mail is set up.

STRONGROOM_NOTIFY_POLL (seconds, default 10) sets the poll interval (tests use a
fraction of a second).
"""
import json
import logging
import os
import threading
import time
from email.message import EmailMessage
from email.utils import parseaddr
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from strongroom.appliance.db.dml import rowcount
from strongroom.appliance.db.models import NotifyDigest, NotifyEvent, User
from strongroom.appliance.notify import digests, render, routing, webhook
from strongroom.appliance.notify.mailer import Mailer, MailError

if TYPE_CHECKING:
    from strongroom.appliance.app import App

log = logging.getLogger("strongroom.notify")

POLL_ENV = "STRONGROOM_NOTIFY_POLL"
DEFAULT_POLL = 10.0
LEASE = 150.0            # seconds: longer than one SMTP conversation (mailer.TIMEOUT)
GIVE_UP = 86400.0        # seconds of failing before a message is marked failed
MAX_DELAY = 3600.0       # the longest wait between two attempts
KEEP = 30 * 86400.0      # sent, failed and skipped messages and routed events are kept this long
BATCH = 100              # messages looked at per round


def poll_interval() -> float:
    """STRONGROOM_NOTIFY_POLL if it is a number of seconds in 0.05-3600, else 10."""
    try:
        value = float(os.environ.get(POLL_ENV, DEFAULT_POLL))
    except ValueError:
        return DEFAULT_POLL
    return min(max(value, 0.05), 3600.0) if value == value else DEFAULT_POLL


class Sender:
    """The notification work of one daemon process (`run` in a thread of its own)."""

    def __init__(self, app: "App", poll: float | None = None) -> None:
        self.app = app
        self.poll = poll_interval() if poll is None else poll
        self.first_retry = 6 * self.poll
        self._cleaned = 0.0

    def run(self, stop: threading.Event) -> None:
        """A round every poll interval until `stop` is set."""
        log.info("notifications: %s", self.describe())
        while not stop.wait(self.poll):
            self.round(stop)

    def describe(self) -> str:
        mailer = Mailer(self.app.config)
        if not mailer.enabled:
            return ("mail is off ([mail] host is empty): changes are recorded, no email "
                    "is sent")
        return f"email through {mailer.server} ({mailer.settings.security})"

    def round(self, stop: threading.Event | None = None) -> None:
        """Route, build and send once; a failure is one log line, and the next round
        tries again."""
        try:
            now = time.time()
            routing.route(self.app, now)
            mailer = Mailer(self.app.config)
            if mailer.enabled:
                digests.build_due(self.app, now)
            self.send_due(mailer, stop)
            if now - self._cleaned > 3600:
                self._cleaned = now
                self.clean(now)
        except Exception as e:    # the database gone, or a bug: the thread must go on
            log.error("notifications: this round failed: %s: %s", type(e).__name__,
                      " ".join(str(e).split())[:300])
            log.debug("the round's failure", exc_info=True)

    # -- sending ----------------------------------------------------------------------

    def send_due(self, mailer: Mailer, stop: threading.Event | None = None) -> int:
        """Send the messages that are due; return how many were sent."""
        now = time.time()
        with self.app.db.read() as s:
            due = s.execute(select(NotifyDigest.id, NotifyDigest.kind).where(
                NotifyDigest.state == "pending", NotifyDigest.next_attempt_at <= now,
                NotifyDigest.claimed_until < now).order_by(NotifyDigest.id).limit(BATCH)).all()
        sent = 0
        for digest_id, kind in due:
            if stop is not None and stop.is_set():
                break
            if kind != "webhook" and not mailer.enabled:
                continue     # waits until mail is set up
            if kind == "webhook" and not self.app.config.notify.webhook_url:
                continue     # waits until a webhook is set up again
            if self._claim(digest_id):
                sent += self._send(digest_id, mailer)
        return sent

    def _claim(self, digest_id: int) -> bool:
        now = time.time()
        with self.app.db.write() as s:
            return rowcount(s.execute(
                update(NotifyDigest).where(NotifyDigest.id == digest_id,
                                           NotifyDigest.state == "pending",
                                           NotifyDigest.claimed_until < now)
                .values(claimed_until=now + LEASE)
                .execution_options(synchronize_session=False))) == 1

    def _send(self, digest_id: int, mailer: Mailer) -> int:
        with self.app.db.read() as s:
            d = s.get(NotifyDigest, digest_id)
            user = s.get(User, d.user_id) if d is not None and d.user_id is not None else None
            if d is None:
                return 0
            kind, payload, to = d.kind, d.payload, user.email if user else None
            message = None if kind == "webhook" else self._message(d, user)
        try:
            if kind == "webhook":
                cfg = self.app.config.notify
                answer = webhook.post(cfg.webhook_url, webhook.read_key(cfg.webhook_secret_file),
                                      (payload or "{}").encode())
            elif message is None:
                raise MailError("the user has no email address any more", permanent=True)
            else:
                answer = mailer.send(message)
        except (MailError, webhook.WebhookError) as e:
            self._failed(digest_id, str(e), permanent=getattr(e, "permanent", False))
            return 0
        self._sent(digest_id, answer, to or self.app.config.notify.webhook_url)
        return 1

    def _message(self, d: NotifyDigest, user: User | None) -> EmailMessage | None:
        if user is None or not user.email:
            return None
        base = digests.portal_base(self.app.config)
        words = render.Text(d.subject or "", d.body_text or "", d.body_html or "")
        if d.kind == "security":
            what = json.loads(d.payload or "{}")
            words = render.security(user.language or "en", user.login, what.get("what", ""),
                                    what.get("ts") or d.created_at, what.get("address"), base)
        sender = self.app.config.mail.sender
        domain = parseaddr(sender)[1].rpartition("@")[2] or "strongroom.invalid"
        return render.message(sender=sender, to=user.email, words=words,
                              message_id=f"<{d.message_id}@{domain}>",
                              unsubscribe=f"{base}/web/account" if base else None)

    def _sent(self, digest_id: int, answer: str, to: str) -> None:
        with self.app.db.write() as s:
            s.execute(update(NotifyDigest).where(NotifyDigest.id == digest_id).values(
                state="sent", sent_at=time.time(), reply=answer[:500], claimed_until=0.0,
                last_error=None).execution_options(synchronize_session=False))
        log.info("notifications: message %d sent to %s: %s", digest_id, to, answer)

    def _failed(self, digest_id: int, error: str, *, permanent: bool = False) -> None:
        """Retry later with a growing delay, or give up: at once on a permanent error
        (a refused or unusable address), else after failing for GIVE_UP seconds."""
        now = time.time()
        with self.app.db.write() as s:
            d = s.get(NotifyDigest, digest_id)
            if d is None:
                return
            d.attempts += 1
            d.failing_since = d.failing_since or now
            d.last_error, d.claimed_until = error[:500], 0.0
            if permanent or now - d.failing_since >= GIVE_UP:
                d.state = "failed"
                log.error("notifications: gave up on message %d (%s) after %d attempts in "
                          "%.0f hours: %s", digest_id, d.kind, d.attempts,
                          (now - d.failing_since) / 3600, error)
                return
            delay = min(self.first_retry * 2 ** (d.attempts - 1), MAX_DELAY)
            d.next_attempt_at = now + delay
        log.warning("notifications: message %d not sent (attempt %d, next in %.0f s): %s",
                    digest_id, d.attempts, delay, error)

    # -- keeping the tables small ------------------------------------------------------

    def clean(self, now: float) -> None:
        """Forget what is older than KEEP: messages that are done, events routed."""
        with self.app.db.write() as s:
            s.execute(delete(NotifyDigest).where(
                NotifyDigest.state.in_(("sent", "failed", "skipped")),
                NotifyDigest.created_at < now - KEEP))
            s.execute(delete(NotifyEvent).where(NotifyEvent.routed_at < now - KEEP))
