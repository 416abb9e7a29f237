"""Invitation links: `user add --invite` makes a user who cannot log in yet and a
one-time link (valid `[web] invite_lifetime`) where that user sets a password and
enrols TOTP in the portal.

Only the SHA-256 of the link's token is stored. Until the link is used the user's
password hash is that of a random secret nobody knows, so a login attempt costs
the same work as any other and fails. The TOTP secret the link's page shows is
derived from the token under a key derived from the master key: the same on every
visit, never stored before it is confirmed, unknowable from the database alone.
Using the link marks it used in the same transaction that sets the password and
the secret, and only if it was still unused and unexpired, so of two uses at once
exactly one succeeds. Refusals (unknown, used, expired link; disabled account) are
audited as `invite-refused`, a use as `invite-accepted`.
"""
import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from sqlalchemy import select, update
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.dml import rowcount
from strongroom.appliance.db.models import Invitation, User
from strongroom.appliance.errors import BadRequest
from strongroom.appliance.notify import outbox
from strongroom.appliance.service.access import hot
from strongroom.appliance.service.login import barred, principal_for
from strongroom.appliance.service.principal import Principal
from strongroom.auth import passwords, totp
from strongroom.config.loader import Config

if TYPE_CHECKING:
    from strongroom.appliance.app import App

log = logging.getLogger("strongroom.web")
MAX_TOKEN = 100


class Unusable(BadRequest):
    """An invitation link that cannot be used: `status` 410 when it was used or has
    expired, 400 when it is unknown or malformed."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Invite:
    """A usable invitation: whose, until when, and the TOTP secret to enrol."""
    login: str
    user_id: int
    expires_at: float
    secret: str
    uri: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def unusable_password_hash() -> str:
    """The argon2id hash of a random secret nobody is told."""
    return passwords.hash_password(secrets.token_urlsafe(32))


def create(s: OrmSession, user_id: int, lifetime: float) -> tuple[str, float]:
    """A new invitation for `user_id` inside the caller's transaction: (token, expiry)."""
    token, now = secrets.token_urlsafe(32), time.time()
    s.add(Invitation(user_id=user_id, token_sha256=digest(token), created_at=now,
                     expires_at=now + lifetime))
    return token, now + lifetime


def url(cfg: Config, token: str) -> str:
    """The link users open: the portal on the public name (else the host)."""
    host = cfg.server.public_name or cfg.server.host
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{cfg.server.webdav_port}/web/invite?t={token}"


class Invitations:
    """Invitation links as the portal uses them, from `address` over `protocol`."""

    def __init__(self, app: "App", protocol: str, address: str | None) -> None:
        self.app, self.protocol, self.address = app, protocol, address
        self._key = app.keyring.derive("invitation totp")

    def open(self, token: str) -> Invite:
        """The usable invitation of `token`; Unusable (audited) otherwise."""
        if not token or len(token) > MAX_TOKEN:
            self._turn_away("-", "malformed link", 400)
        now = time.time()
        with self.app.db.read() as s:
            row = s.scalar(select(Invitation).where(Invitation.token_sha256 == digest(token)))
            user = s.get(User, row.user_id) if row is not None else None
            found = (user.login, barred(user), row.user_id, row.used_at is not None,
                     row.expires_at) if row is not None and user is not None else None
        if found is None:
            self._turn_away("-", "unknown link", 400)
        login, disabled, user_id, used, expires_at = found
        expired = expires_at <= now
        if used:
            self._turn_away(login, "link already used", 410)
        if expired:
            self._turn_away(login, "link expired", 410)
        if disabled:
            self._turn_away(login, "account disabled", 410)
        secret = self.secret(token)
        return Invite(login, user_id, expires_at, secret,
                      totp.provisioning_uri(secret, login))

    def secret(self, token: str) -> str:
        """The TOTP secret of `token`'s invitation (160 bits, base32 as apps expect)."""
        mac = hmac.new(self._key, digest(token).encode(), hashlib.sha256).digest()
        return base64.b32encode(mac[:20]).decode()

    def accept(self, token: str, password: str, code: str) -> Principal:
        """Set the password (policy-checked) and enrol the TOTP secret once `code` made
        with it is right, marking the link used: the user's principal. BadRequest
        for a weak password or a wrong code (the link stays usable), Unusable when
        the link is not (any more)."""
        invite = self.open(token)
        try:
            passwords.check_policy(invite.login, password)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        step = totp.matching_step(invite.secret, code.replace(" ", ""))
        if step is None:
            log.info("web: invitation of %s: wrong code from %s", invite.login, self.address)
            raise BadRequest("the code is not right: check the phone's clock and try the "
                             "next code")
        new_hash = passwords.hash_password(password)
        with self.app.db.write() as s:
            principal = self._use(s, token, invite, new_hash, step)
        if principal is None:    # used (or expired) since `open`, by another request
            self._turn_away(invite.login, "link already used", 410)
        log.info("web: invitation of %s accepted from %s", invite.login, self.address)
        return principal

    def _use(self, s: OrmSession, token: str, invite: Invite, new_hash: str,
             step: int) -> Principal | None:
        """Mark the link used and set the credentials, if it is still usable."""
        now = time.time()
        marked = rowcount(s.execute(update(Invitation).where(
            Invitation.token_sha256 == digest(token), Invitation.used_at.is_(None),
            Invitation.expires_at > now).values(used_at=now)))
        user = s.get(User, invite.user_id)
        if not marked or user is None:
            return None
        user.password_hash, user.totp_secret, user.totp_last_step = \
            new_hash, invite.secret, step
        self._audit(s, "invite-accepted", invite.login, "ok", "password set, TOTP enrolled")
        # told by email like any enrolment: a link that leaked and was used by someone
        # else shows up in the real user's inbox at once
        outbox.security(hot(s), user.id, "totp-enrolled", protocol=self.protocol,
                        address=self.address)
        return principal_for(user)

    def _turn_away(self, login: str, why: str, status: int) -> NoReturn:
        with self.app.db.write() as s:
            self._audit(s, "invite-refused", login, "denied", why)
        log.info("web: invitation refused (%s) for %s from %s", why, login, self.address)
        raise Unusable(why, status)

    def _audit(self, s: OrmSession, action: str, login: str, outcome: str,
               detail: str) -> None:
        self.app.audit.append(s, actor=login, protocol=self.protocol, address=self.address,
                              action=action, outcome=outcome, detail=detail)
