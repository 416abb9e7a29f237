"""A user's own login settings, changed by that user (the portal's account page):
the password (with the current password and, for a TOTP user, a fresh code), TOTP
enrolment for a user who has none, app passwords, drive sessions and portal
sessions. The admin's equivalents are appliance.service.credentials.

Every change is audited with the user as actor and the adapter's protocol and
address; a refused password check is audited too and counts against the same
per-account and per-address throttle as a failed login, so a stolen portal session
cannot be used to guess the password. A TOTP secret being enrolled waits on the
portal session that showed it (web_sessions.pending_totp), never in the browser,
until a code made with it confirms it.
"""
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.dml import rowcount
from strongroom.appliance.db.models import AppPassword, DriveSession, User, WebSession
from strongroom.appliance.errors import AuthFailed, BadRequest, Conflict, NotFound
from strongroom.appliance.notify import outbox
from strongroom.appliance.service.access import hot
from strongroom.appliance.service.admin_base import Json
from strongroom.appliance.service.credentials import MAX_LABEL
from strongroom.appliance.service.principal import Principal
from strongroom.auth import app_passwords, passwords, totp

if TYPE_CHECKING:
    from strongroom.appliance.app import App

WRONG = "the current password or the code is not right"


@dataclass(frozen=True)
class Enrolment:
    """A TOTP secret waiting for its first code, and its otpauth:// URI (the QR code)."""
    secret: str
    uri: str


class Account:
    """The account of `principal` (a user, not the admin), as changed through one
    adapter (`protocol`, e.g. "web") from `address`."""

    def __init__(self, app: "App", principal: Principal, protocol: str,
                 address: str | None) -> None:
        if principal.user_id is None:
            raise BadRequest("only a user has an account")
        self.app, self.principal, self.protocol, self.address = app, principal, protocol, address
        self.user_id: int = principal.user_id

    # -- reading ---------------------------------------------------------------------------

    def has_totp(self) -> bool:
        with self.app.db.read() as s:
            return self._user(s).totp_secret is not None

    def app_passwords(self) -> list[Json]:
        """Labels and dates (the secrets are not kept), by label."""
        with self.app.db.read() as s:
            rows = s.scalars(select(AppPassword).where(AppPassword.user_id == self.user_id)
                             .order_by(AppPassword.label))
            return [{"label": r.label, "created_at": r.created_at,
                     "expires_at": r.expires_at, "last_used_at": r.last_used_at} for r in rows]

    def drive_sessions(self) -> list[Json]:
        """Live and ended-but-not-yet-swept drive sessions, oldest first."""
        with self.app.db.read() as s:
            rows = s.scalars(select(DriveSession).where(DriveSession.user_id == self.user_id)
                             .order_by(DriveSession.id))
            return [{"id": r.id, "network": r.network, "created_at": r.created_at,
                     "last_used_at": r.last_used_at, "expires_at": r.expires_at} for r in rows]

    def web_sessions(self) -> list[dict[str, object]]:
        return self.app.web_sessions.of_user(self.user_id)

    # -- notifications ----------------------------------------------------------------------

    def notify_frequency(self) -> str:
        """How often the user hears of new documents (appliance.notify.outbox.frequency)."""
        with self.app.db.read() as s:
            user = self._user(s)
            return outbox.frequency(user.role, user.notify_frequency)

    def set_notify_frequency(self, frequency: str) -> None:
        """The user's own choice, as `strongroom user notify` sets it (audited user-notify)."""
        if frequency not in outbox.FREQUENCIES:
            raise BadRequest(f"a frequency is one of {', '.join(outbox.FREQUENCIES)}")
        with self.app.db.write() as s:
            self._user(s).notify_frequency = frequency
            self._audit(s, "user-notify", f"login={self.principal.login} frequency={frequency}")

    # -- the password -----------------------------------------------------------------------

    def change_password(self, current: str, code: str, new: str, *,
                        keep_web_session: int | None = None) -> None:
        """Set a new password (checked against the policy) after checking the current
        one and, for a TOTP user, a fresh code (used up). Ends the user's drive
        sessions and every portal session but `keep_web_session`. AuthFailed for a
        wrong password or code (audited, throttled), BadRequest for a weak password."""
        try:
            passwords.check_policy(self.principal.login, new)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        if new == current:
            raise BadRequest("the new password is the same as the current one")
        self._reauthenticate(current, code, "password-change")
        new_hash = passwords.hash_password(new)
        with self.app.db.write() as s:
            self._user(s).password_hash = new_hash
            s.execute(delete(DriveSession).where(DriveSession.user_id == self.user_id))
            others = delete(WebSession).where(WebSession.user_id == self.user_id)
            if keep_web_session is not None:
                others = others.where(WebSession.id != keep_web_session)
            ended = rowcount(s.execute(others))
            self._audit(s, "password-change", f"other portal sessions ended={ended}")
            self._security_notice(s, "password-changed")

    def _reauthenticate(self, password: str, code: str, action: str) -> None:
        """The current password (and a fresh code of a TOTP user), through the login
        throttle: a block refuses, a due delay waits, a failure counts."""
        login, lockout = self.principal.login, self.app.auth.lockout
        attempt, blocked, delay = lockout.begin(login, self.address)
        try:
            if blocked:
                self._refuse(action, "throttled")
            if delay:
                time.sleep(delay)
            with self.app.db.read() as s:
                user = self._user(s)
                stored, secret = user.password_hash, user.totp_secret
            ok = passwords.verify_password(stored, password)
            if secret is not None:
                ok = ok and self._consume_code(secret, code.replace(" ", ""))
            if not ok:
                lockout.failed(login, self.address)
                self._refuse(action, "wrong password or code")
        finally:
            lockout.end(attempt)

    def _consume_code(self, secret: str, code: str) -> bool:
        """`code` is valid now and later than the last code accepted (as a login's)."""
        step = totp.matching_step(secret, code)
        if step is None:
            return False
        with self.app.db.write() as s:
            return rowcount(s.execute(update(User).where(
                User.id == self.user_id, User.totp_secret == secret,
                or_(User.totp_last_step.is_(None), User.totp_last_step < step))
                .values(totp_last_step=step))) == 1

    # -- TOTP enrolment ---------------------------------------------------------------------

    def start_totp(self, web_session: int) -> Enrolment:
        """The secret portal session `web_session` is enrolling (made at the first call,
        the same until confirmed); Conflict when the user has TOTP already."""
        with self.app.db.write() as s:
            if self._user(s).totp_secret is not None:
                raise Conflict("this account has a second factor already")
            row = self._web_session(s, web_session)
            if row.pending_totp is None:
                row.pending_totp = totp.new_secret()
            secret = row.pending_totp
        return Enrolment(secret, totp.provisioning_uri(secret, self.principal.login))

    def confirm_totp(self, web_session: int, password: str, code: str) -> None:
        """Enrol the secret `start_totp` showed, once `code` (made with it) and the
        current password are right; the code counts as used. BadRequest for a
        wrong code or when nothing is waiting, AuthFailed for a wrong password."""
        with self.app.db.read() as s:
            secret = self._web_session(s, web_session).pending_totp
        if secret is None:
            raise BadRequest("no enrolment is waiting: start again")
        self._reauthenticate(password, "", "totp-enrol")
        step = totp.matching_step(secret, code.replace(" ", ""))
        if step is None:
            self._refuse("totp-enrol", "wrong code", BadRequest(
                "the code is not right: check the phone's clock and try the next code"))
        with self.app.db.write() as s:
            done = rowcount(s.execute(update(User).where(
                User.id == self.user_id, User.totp_secret.is_(None))
                .values(totp_secret=secret, totp_last_step=step)))
            if not done:
                raise Conflict("this account has a second factor already")
            self._web_session(s, web_session).pending_totp = None
            self._audit(s, "totp-enrol")
            self._security_notice(s, "totp-enrolled")

    # -- app passwords, drive and portal sessions --------------------------------------------

    def create_app_password(self, label: str, expires_in: float | None = None) -> Json:
        """A new app password: the secret is in the answer only (kept as a hash)."""
        label = label.strip()
        if not label or len(label) > MAX_LABEL:
            raise BadRequest(f"a label is 1-{MAX_LABEL} characters")
        secret, now = app_passwords.generate(), time.time()
        expires_at = now + expires_in if expires_in else None
        with self.app.db.write() as s:
            if s.scalar(select(AppPassword.id).where(AppPassword.user_id == self.user_id,
                                                     AppPassword.label == label)):
                raise Conflict(f"an app password labelled {label!r} exists already")
            s.add(AppPassword(user_id=self.user_id, label=label, created_at=now,
                              secret_sha256=app_passwords.digest(secret), expires_at=expires_at))
            self._audit(s, "app-password-create", f"label={label}")
            self._security_notice(s, "app-password-created")
        return {"label": label, "password": secret, "expires_at": expires_at}

    def revoke_app_password(self, label: str) -> None:
        with self.app.db.write() as s:
            if not rowcount(s.execute(delete(AppPassword).where(
                    AppPassword.user_id == self.user_id, AppPassword.label == label))):
                raise NotFound(f"no app password labelled {label!r}")
            self._audit(s, "app-password-revoke", f"label={label}")

    def end_drive_session(self, session_id: int) -> None:
        with self.app.db.write() as s:
            if not rowcount(s.execute(delete(DriveSession).where(
                    DriveSession.user_id == self.user_id, DriveSession.id == session_id))):
                raise NotFound("no such drive session")
            self._audit(s, "drive-session-end", f"id={session_id}")

    def end_web_session(self, session_id: int) -> None:
        with self.app.db.write() as s:
            if not rowcount(s.execute(delete(WebSession).where(
                    WebSession.user_id == self.user_id, WebSession.id == session_id))):
                raise NotFound("no such portal session")
            self._audit(s, "web-session-end", f"id={session_id}")

    # -- helpers -------------------------------------------------------------------------------

    def _user(self, s: OrmSession) -> User:
        user = s.get(User, self.user_id)
        if user is None:
            raise NotFound("this account no longer exists")
        return user

    def _web_session(self, s: OrmSession, session_id: int) -> WebSession:
        row = s.get(WebSession, session_id)
        if row is None or row.user_id != self.user_id:
            raise NotFound("this portal session has ended")
        return row

    def _audit(self, s: OrmSession, action: str, detail: str | None = None,
               outcome: str = "ok") -> None:
        self.app.audit.append(s, actor=self.principal.login, protocol=self.protocol,
                              address=self.address, action=action, outcome=outcome,
                              detail=detail)

    def _security_notice(self, s: OrmSession, what: str) -> None:
        """Tell the user at once, by email, in the transaction of the change
        (appliance.notify.outbox)."""
        outbox.security(hot(s), self.user_id, what, protocol=self.protocol,
                        address=self.address)

    def _refuse(self, action: str, why: str,
                error: Exception | None = None) -> NoReturn:
        with self.app.db.write() as s:
            self._audit(s, action, why, outcome="denied")
        raise error or AuthFailed(WRONG)
