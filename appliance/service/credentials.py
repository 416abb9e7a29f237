"""Admin operations on how users log in: passwords, TOTP enrolment, app passwords,
drive sessions, disabling, unlocking. Mixed into Admin; every change is audited."""
import time

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.dml import rowcount
from strongroom.appliance.db.models import AppPassword, DriveSession, User
from strongroom.appliance.errors import BadRequest, Conflict, NotFound
from strongroom.appliance.notify import outbox
from strongroom.appliance.service.access import hot
from strongroom.appliance.service.admin_base import AdminBase, Json, chosen_password
from strongroom.auth import app_passwords, passwords, totp

if TYPE_CHECKING:
    from strongroom.appliance.service.locks import LockStore

MAX_LABEL = 100


class CredentialsMixin(AdminBase):
    def set_password(self, login: str, password: str | None) -> Json:
        """A new password (generated when None); ends the user's drive sessions."""
        password, generated = chosen_password(login, password)
        with self.app.db.write() as s:
            user = self._user(s, login)
            user.password_hash = passwords.hash_password(password)
            s.execute(delete(DriveSession).where(DriveSession.user_id == user.id))
            self._audit(s, "user-passwd", None, f"login={login}")
            outbox.security(hot(s), user.id, "password-changed", protocol=self.protocol)
        return {"login": login, **({"password": password} if generated else {})}

    def reset_totp(self, login: str, enable: bool = True) -> Json:
        """Enrol a new TOTP secret (or, with enable=False, remove the second factor)."""
        secret = totp.new_secret() if enable else None
        with self.app.db.write() as s:
            user = self._user(s, login)
            user.totp_secret, user.totp_last_step = secret, None
            s.execute(delete(DriveSession).where(DriveSession.user_id == user.id))
            self._audit(s, "user-totp-reset", None, f"login={login} totp={enable}")
            outbox.security(hot(s), user.id, "totp-reset" if enable else "totp-removed",
                            protocol=self.protocol)
        out = {"login": login}
        if secret:
            out.update(totp_secret=secret, otpauth_uri=totp.provisioning_uri(secret, login))
        return out

    def set_disabled(self, login: str, disabled: bool) -> Json:
        """Disable (ending live SFTP sessions and drive sessions within seconds, and
        releasing the account's WebDAV locks) or enable."""
        with self.app.db.write() as s:
            user = self._user(s, login)
            user.disabled = disabled
            if disabled:
                end_sessions(s, self.app.locks, [user])
            self._audit(s, "user-disable" if disabled else "user-enable", None, f"login={login}")
        return {"login": login, "disabled": disabled}

    def unlock(self, login: str | None, address: str | None) -> Json:
        """Forget failed logins of an account and/or a source address."""
        if not login and not address:
            raise BadRequest("give a login or --address")
        if login:
            with self.app.db.read() as s:
                self._user(s, login)
        removed = self.app.auth.lockout.unlock(login=login, address=address)
        with self.app.db.write() as s:
            self._audit(s, "user-unlock", None, f"login={login} address={address}")
        return {"login": login, "address": address, "cleared": removed}

    def create_app_password(self, login: str, label: str, expires_in: float | None) -> Json:
        label = label.strip()
        if not label or len(label) > MAX_LABEL:
            raise BadRequest(f"a label is 1-{MAX_LABEL} characters")
        secret, now = app_passwords.generate(), time.time()
        with self.app.db.write() as s:
            user = self._user(s, login)
            if s.scalar(select(AppPassword).where(AppPassword.user_id == user.id,
                                                  AppPassword.label == label)):
                raise Conflict(f"{login} already has an app password labelled {label!r}")
            s.add(AppPassword(user_id=user.id, label=label, created_at=now,
                              secret_sha256=app_passwords.digest(secret),
                              expires_at=now + expires_in if expires_in else None))
            self._audit(s, "app-password-create", None, f"login={login} label={label}")
            outbox.security(hot(s), user.id, "app-password-created", protocol=self.protocol)
        return {"login": login, "label": label, "password": secret,
                "expires_at": now + expires_in if expires_in else None}

    def list_app_passwords(self, login: str) -> list[Json]:
        with self.app.db.read() as s:
            user = self._user(s, login)
            rows = s.scalars(select(AppPassword).where(AppPassword.user_id == user.id)
                             .order_by(AppPassword.label))
            return [{"login": login, "label": r.label, "created_at": r.created_at,
                     "expires_at": r.expires_at, "last_used_at": r.last_used_at} for r in rows]

    def revoke_app_password(self, login: str, label: str) -> None:
        with self.app.db.write() as s:
            user = self._user(s, login)
            done = rowcount(s.execute(delete(AppPassword).where(
                AppPassword.user_id == user.id, AppPassword.label == label)))
            if not done:
                raise NotFound(f"{login} has no app password labelled {label!r}")
            self._audit(s, "app-password-revoke", None, f"login={login} label={label}")

    def list_drive_sessions(self, login: str) -> list[Json]:
        with self.app.db.read() as s:
            user = self._user(s, login)
            rows = s.scalars(select(DriveSession).where(DriveSession.user_id == user.id)
                             .order_by(DriveSession.id))
            return [{"id": r.id, "network": r.network, "created_at": r.created_at,
                     "last_used_at": r.last_used_at, "expires_at": r.expires_at} for r in rows]


def end_sessions(s: OrmSession, locks: "LockStore", users: Iterable[User]) -> None:
    """Drive sessions and WebDAV locks of `users` end: they may no longer log in.
    (Live SFTP sessions end by themselves: sftp.server asks Authenticator.ended_among.)"""
    for user in users:
        s.execute(delete(DriveSession).where(DriveSession.user_id == user.id))
        owned = locks.listed(s, principal=user.login)
        locks.drop(s, [lock["token"] for lock in owned])
