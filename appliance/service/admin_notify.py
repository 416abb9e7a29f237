"""Notifications, mixed into Admin: `notify test`, one short email to a user's address
now, through the [mail] settings (appliance.notify.mailer), so that an admin sees at
once whether mail reaches people and, if not, the mail server's reason (audited as
notify-test whether the server took it or not); `notify status`, the queue of the
outbox and sender (appliance.notify); `user notify`, how often a user hears of
changes (audited as user-notify)."""
import functools

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.models import NotifyDelivery, NotifyDigest, NotifyEvent, User
from strongroom.appliance.errors import BadRequest
from strongroom.appliance.notify import outbox
from strongroom.appliance.notify.mailer import Mailer, MailError
from strongroom.appliance.service.admin_base import AdminBase, Json

SUBJECT = "Strongroom test message"
TEXT = ("This is a test message from Strongroom, sent by {actor} with "
        "'strongroom notify test'.\n\nIf you can read it, Strongroom's email "
        "notifications reach {to}. Nothing needs to be done.\n")


class NotifyMixin(AdminBase):
    def notify_test(self, login: str) -> Json:
        """Send the test message to `login`'s email address and return {"login", "to",
        "server", "security", "answer"} (answer: the mail server's reply to it, e.g.
        "250 2.0.0 Ok: queued as 4Xq"). Raises MailError (one line; audited with
        outcome failed) when the server did not take it, and BadRequest/NotFound,
        unaudited, when mail is not configured, the user is unknown or has no
        address."""
        mailer = Mailer(self.app.config)
        if not mailer.enabled:
            raise BadRequest(f"mail is not configured: set [mail] host (and sender) in "
                             f"{self.app.config.path}")
        with self.app.db.read() as s:
            to = self._user(s, login).email
        if not to:
            raise BadRequest(f"user {login!r} has no email address: "
                             f"strongroom user set {login} --email ADDRESS")
        out: Json = {"login": login, "to": to, "server": mailer.server,
                     "security": mailer.settings.security}
        try:
            msg = mailer.message(to, SUBJECT, TEXT.format(actor=self.actor, to=to))
            out["answer"] = mailer.send(msg)
        except MailError as e:
            self._audit_test(login, "failed", f"to={to!r} server={mailer.server} {e}")
            raise
        self._audit_test(login, "ok", f"to={to} server={mailer.server} "
                                      f"answer={out['answer']}")
        return out

    def _audit_test(self, login: str, outcome: str, detail: str) -> None:
        # not self._audit: a test mail changes nobody's access
        with self.app.db.write() as s:
            self.app.audit.append(s, actor=self.actor, protocol=self.protocol, address=None,
                                  action="notify-test", path=None, outcome=outcome,
                                  detail=f"login={login} {detail}")

    # -- how often users hear of changes, and the queue (appliance.notify) ---------------

    def set_notify_frequency(self, login: str, frequency: str) -> Json:
        """How often `login` hears of changes: off, immediate (once the tree has been
        quiet for [notify] quiet_period), hourly, daily or weekly. Audited (user-notify)."""
        if frequency not in outbox.FREQUENCIES:
            raise BadRequest(f"a frequency is one of {', '.join(outbox.FREQUENCIES)}")
        with self.app.db.write() as s:
            user = self._user(s, login)
            user.notify_frequency = frequency
            self._audit(s, "user-notify", None, f"login={login} frequency={frequency}")
        return {"login": login, "notify": frequency}

    def notify_status(self, limit: int = 50) -> Json:
        """The queue: events not yet routed (their tree not quiet yet), deliveries
        waiting for a user's next digest, messages pending (with their last error) and
        failed (newest first, at most `limit` each), and the last message sent."""
        mailer = Mailer(self.app.config)
        cfg = self.app.config.notify
        with self.app.db.read() as s:
            count = functools.partial(_count, s)
            out: Json = {
                "mail": mailer.server if mailer.enabled else None,
                "webhook": cfg.webhook_url or None,
                "quiet_period": cfg.quiet_period,
                "events_waiting": count(NotifyEvent.routed_at.is_(None)),
                "deliveries_waiting": s.scalar(select(func.count()).select_from(
                    NotifyDelivery).where(NotifyDelivery.digest_id.is_(None))) or 0,
                "pending_count": count(NotifyDigest.state == "pending", digests=True),
                "failed_count": count(NotifyDigest.state == "failed", digests=True),
                "last_sent_at": s.scalar(select(func.max(NotifyDigest.sent_at))),
                "pending": _listed(s, "pending", limit),
                "failed": _listed(s, "failed", limit),
            }
        return out


def _count(s: OrmSession, where: ColumnElement[bool], digests: bool = False) -> int:
    model = NotifyDigest if digests else NotifyEvent
    return s.scalar(select(func.count()).select_from(model).where(where)) or 0


def _listed(s: OrmSession, state: str, limit: int) -> list[Json]:
    rows = s.execute(select(NotifyDigest, User.login).outerjoin(
        User, User.id == NotifyDigest.user_id).where(NotifyDigest.state == state)
        .order_by(NotifyDigest.id.desc()).limit(limit)).all()
    return [{"id": d.id, "kind": d.kind, "to": login if d.kind != "webhook" else "webhook",
             "lines": d.lines, "attempts": d.attempts, "created_at": d.created_at,
             "next_attempt_at": d.next_attempt_at if state == "pending" else None,
             "last_error": d.last_error} for d, login in rows]
