"""`notify test`, mixed into Admin: one short email to a user's address now, through
the [mail] settings (appliance.notify.mailer), so that an admin sees at once whether
mail reaches people and, if not, the mail server's reason. Audited (notify-test)
whether the server took it or not."""
from strongroom.appliance.errors import BadRequest
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
