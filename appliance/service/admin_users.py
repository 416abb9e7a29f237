"""Admin operations on users: add, change (email, display name, language), rename,
remove, list, and their SSH keys. Mixed into Admin; every change is audited.

Logins are unique without regard to case. Grants, keys, app passwords and drive
sessions refer to a user by id and follow a rename; WebDAV locks (kept by login)
are moved. A renamed user logs in with the new login: live SFTP sessions under
the old one end within seconds, and WebDAV requests with the old one fail (a
mapped drive keeps its drive session once its login is changed). Removing a user
deletes everything of the account; the audit trail and version authors keep the
login.
"""
from sqlalchemy import delete, select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.dml import rowcount
from strongroom.appliance.db import repo
from strongroom.appliance.db.models import AclGrant, AppPassword, DriveSession, User, UserKey
from strongroom.appliance.errors import BadRequest, Conflict, NotFound
from strongroom.appliance.notify import outbox
from strongroom.appliance.service.admin_base import AdminBase, Json, chosen_password
from strongroom.appliance.service.admin_clients import NAME, check_display_name
from strongroom.appliance.service import invitations, renames
from strongroom.appliance.service.credentials import end_sessions
from strongroom.auth import passwords, sshkeys, totp

LANGUAGES = ("en", "sv", "he")
MAX_EMAIL = 254


class UsersMixin(AdminBase):
    def add_user(self, login: str, *, client: str | None, staff: bool, email: str | None,
                 password: str | None, with_totp: bool, invite: bool = False) -> Json:
        """Create a user. With `invite`, the user gets no usable password and no TOTP
        but a one-time link (`invite_url`, valid [web] invite_lifetime) where they set
        both (appliance.service.invitations)."""
        _check_login(login)
        if invite:
            _check_invite(self.app.config.web.enabled, password, with_totp)
            password_hash, generated = invitations.unusable_password_hash(), False
        else:
            password, generated = chosen_password(login, password)
            password_hash = passwords.hash_password(password)
        secret = totp.new_secret() if with_totp and not invite else None
        with self.app.db.write() as s:
            _login_free(s, login)
            if not staff and client is None:
                raise BadRequest("a client user belongs to a client: give one, or make it staff")
            client_row = None if client is None or staff else self._client_row(s, client)
            user = User(login=login, role="staff" if staff else "client",
                        client_id=client_row.id if client_row else None,
                        email=_check_email(email) if email else None,
                        password_hash=password_hash, totp_secret=secret)
            s.add(user)
            if invite:
                s.flush()    # the user's id, for the invitation
                token, until = invitations.create(s, user.id, self.app.config.web.invite_lifetime)
            self._audit(s, "user-add", None, f"login={login} role={user.role} client={client}"
                        + (" invite=yes" if invite else ""))
        out: Json = {"login": login, "role": user.role,
                     "client": client if not staff else None, "email": user.email}
        if generated:
            out["password"] = password
        if secret:
            out["totp_secret"] = secret
            out["otpauth_uri"] = totp.provisioning_uri(secret, login)
        if invite:
            out["invite_url"] = invitations.url(self.app.config, token)
            out["invite_expires_at"] = until
        return out

    def set_user(self, login: str, *, email: str | None = None,
                 display_name: str | None = None, language: str | None = None) -> Json:
        """Change what is given; '' clears an email address or display name."""
        changes = []
        with self.app.db.write() as s:
            user = self._user(s, login)
            if email is not None:
                user.email = _check_email(email) if email else None
                changes.append(f"email={user.email}")
            if display_name is not None:
                user.display_name = check_display_name(display_name)
                changes.append(f"display_name={user.display_name}")
            if language is not None:
                if language not in LANGUAGES:
                    raise BadRequest(f"a language is one of {', '.join(LANGUAGES)}")
                user.language = language
                changes.append(f"language={language}")
            if not changes:
                raise BadRequest("nothing to change: give --email, --display-name or --language")
            self._audit(s, "user-set", None, f"login={login} " + " ".join(changes))
            return user_dict(user)

    def rename_user(self, old: str, new: str) -> Json:
        """Rename user `old` to `new` (see the module docstring for what follows)."""
        _check_login(new)
        with self.app.db.write() as s:
            user = self._user(s, old)
            if new == old:
                raise BadRequest(f"user {old} is already called {new}")
            _login_free(s, new, but=user)
            user.login = new
            self.app.locks.rename_owner(s, old, new)
            self._audit(s, "user-rename", None, renames.detail(old, new))
            out = user_dict(user)
        self.app.auth.lockout.unlock(login=old)   # a later user called `old` starts afresh
        return out

    def remove_user(self, login: str) -> Json:
        """Remove user `login` with its drive sessions, SSH keys, app passwords,
        grants, WebDAV locks and failed-login counter; its open sessions stop."""
        with self.app.db.write() as s:
            user = self._user(s, login)
            for model in (DriveSession, UserKey, AppPassword):
                s.execute(delete(model).where(model.user_id == user.id))
            grants = rowcount(s.execute(delete(AclGrant).where(
                AclGrant.subject_kind == "user", AclGrant.subject_id == user.id)))
            end_sessions(s, self.app.locks, [user])
            out = dict(user_dict(user), grants_removed=grants)
            s.delete(user)
            self._audit(s, "user-remove", None,
                        f"login={login} role={out['role']} client={out['client']} "
                        f"grants={grants}")
        self.app.auth.lockout.unlock(login=login)
        return out

    def list_users(self) -> list[Json]:
        with self.app.db.read() as s:
            return [user_dict(u) for u in s.scalars(select(User).order_by(User.login))]

    # -- SSH keys -------------------------------------------------------------------------

    def add_key(self, login: str, line: str) -> Json:
        """Authorize an SSH public key (an authorized_keys line) for `login`."""
        try:
            key_type, data, comment = sshkeys.parse(line)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        fp = sshkeys.fingerprint(data)
        with self.app.db.write() as s:
            user = self._user(s, login)
            if any(k.fingerprint == fp for k in repo.keys_of(s, user.id)):
                raise Conflict(f"key {fp} is already authorized for {login}")
            s.add(UserKey(user_id=user.id, key_type=key_type, key_data=data, fingerprint=fp,
                          comment=comment))
            self._audit(s, "key-add", None, f"login={login} key={fp}")
        return {"login": login, "type": key_type, "fingerprint": fp, "comment": comment}

    def list_keys(self, login: str) -> list[Json]:
        with self.app.db.read() as s:
            return [{"login": login, "type": k.key_type, "fingerprint": k.fingerprint,
                     "comment": k.comment} for k in repo.keys_of(s, self._user(s, login).id)]

    def remove_key(self, login: str, fingerprint: str) -> None:
        with self.app.db.write() as s:
            user = self._user(s, login)
            keys = [k for k in repo.keys_of(s, user.id) if k.fingerprint == fingerprint]
            if not keys:
                raise NotFound(f"no key {fingerprint} for {login}")
            s.delete(keys[0])
            self._audit(s, "key-remove", None, f"login={login} key={fingerprint}")


def _check_login(login: str) -> None:
    if not NAME.match(login):
        raise BadRequest("logins are 1-64 letters, digits, '.', '_' or '-'")


def _check_invite(web_enabled: bool, password: str | None, with_totp: bool) -> None:
    if not web_enabled:
        raise BadRequest("an invitation is a page of the web portal, which is turned off "
                         "([web] enabled = false)")
    if password is not None:
        raise BadRequest("an invited user chooses their own password: give no password")
    if not with_totp:
        raise BadRequest("an invited user always enrols TOTP: --no-totp does not go with "
                         "--invite")


def _check_email(email: str) -> str:
    email = email.strip()
    local, at, domain = email.partition("@")
    if not (local and at and domain) or len(email) > MAX_EMAIL or \
            any(ch.isspace() or not ch.isprintable() for ch in email):
        raise BadRequest(f"not an email address: {email!r}")
    return email


def _login_free(s: OrmSession, login: str, but: User | None = None) -> None:
    existing = repo.user_named_alike(s, login)
    if existing is None or existing is but:
        return
    if existing.login == login:
        raise Conflict(f"user {login!r} already exists")
    raise Conflict(f"{login!r} is taken: a user {existing.login!r} exists "
                   f"(logins are unique without regard to case)")


def user_dict(u: User) -> Json:
    return {"login": u.login, "role": u.role, "client": u.client.name if u.client else None,
            "email": u.email, "display_name": u.display_name, "language": u.language,
            "totp": u.totp_secret is not None, "disabled": bool(u.disabled),
            "notify": outbox.frequency(u.role, u.notify_frequency)}
