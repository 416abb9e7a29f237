"""The rows behind app passwords and WebDAV drive sessions, for
appliance.service.login's Authenticator: found, opened and touched here;
whether a secret matches a row is decided there (one argon2 verification)."""
import hashlib
import hmac
import time
from typing import Protocol

from sqlalchemy import select, update

from strongroom.appliance.db import Database
from strongroom.appliance.db.models import AppPassword, DriveSession, User
from strongroom.auth import app_passwords
from strongroom.auth.passwords import hash_password

MAX_DRIVE_SESSIONS = 20     # per user; the oldest go first


class DriveSessionOptions(Protocol):
    """The options of the [auth] section drive sessions follow (seconds)."""
    @property
    def drive_session_idle(self) -> float: ...
    @property
    def drive_session_lifetime(self) -> float: ...


class CredentialRows:
    """`lookup_key`: the key of drive-session lookups (derived from the master key)."""

    def __init__(self, db: Database, auth_cfg: DriveSessionOptions, lookup_key: bytes):
        self._db, self._cfg, self._lookup_key = db, auth_cfg, lookup_key

    def app_password(self, user: User, secret: str) -> int | None:
        """The id of the user's unexpired app password `secret`, or None."""
        now = time.time()
        with self._db.read() as db:
            row = db.scalar(select(AppPassword).where(
                AppPassword.secret_sha256 == app_passwords.digest(secret),
                AppPassword.user_id == user.id))
            if row is None or (row.expires_at is not None and row.expires_at < now):
                return None
            return row.id

    def _lookup(self, user_id: int, secret: str, network: str) -> str:
        message = f"{user_id}\0{network}\0{secret}".encode()
        return hmac.new(self._lookup_key, message, hashlib.sha256).hexdigest()

    def drive_session(self, user: User, secret: str, network: str) -> DriveSession | None:
        """The live drive session of `user` that `secret` would open from `network`,
        found by one indexed query (its secret_hash still to be verified), or None."""
        now = time.time()
        with self._db.read() as db:
            return db.scalar(select(DriveSession).where(
                DriveSession.lookup == self._lookup(user.id, secret, network),
                DriveSession.user_id == user.id, DriveSession.network == network,
                DriveSession.expires_at > now,
                DriveSession.last_used_at > now - self._cfg.drive_session_idle).limit(1))

    def open_drive_session(self, user: User, secret: str, network: str) -> int:
        """A new drive session; the user's oldest beyond MAX_DRIVE_SESSIONS go."""
        now = time.time()
        with self._db.write() as db:
            row = DriveSession(user_id=user.id, secret_hash=hash_password(secret),
                               lookup=self._lookup(user.id, secret, network),
                               network=network, created_at=now, last_used_at=now,
                               expires_at=now + self._cfg.drive_session_lifetime)
            db.add(row)
            db.flush()
            old = list(db.scalars(select(DriveSession).where(DriveSession.user_id == user.id)
                                  .order_by(DriveSession.id.desc())
                                  .offset(MAX_DRIVE_SESSIONS)))
            for r in old:
                db.delete(r)
            return row.id

    def touch(self, model: type[DriveSession] | type[AppPassword], row_id: int,
              now: float) -> None:
        """Record that a drive session or app password was used at `now`."""
        with self._db.write() as db:
            db.execute(update(model).where(model.id == row_id).values(last_used_at=now))
