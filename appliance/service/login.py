"""Logins for every protocol: passwords, TOTP codes, app passwords, drive sessions,
SSH keys, with throttling and an audit event for every outcome.

A TOTP user is never let in without a fresh code, except by a credential that a
fresh code opened (a WebDAV drive session) or an app password the admin issued.
A code is accepted once per user (the last accepted time step is kept in the
database, so this holds across restarts and protocols).

One-string logins (`password_login`: SFTP password, WebDAV Basic) accept
- a user without TOTP: the password;
- a TOTP user: password followed by the current code; over WebDAV this opens a
  drive session bound to that exact string and the client's network, so the
  drive, which resends the same string with every request, keeps working;
- an app password (WebDAV; SFTP only if [auth] app_passwords_sftp).
Multi-step logins (SSH keyboard-interactive, public key then code) go through
`first_factor` / `key_factor` and `second_factor`.

Every attempt meets the throttle first (a block holds for remembered logins
too), attempts being checked at the same moment count against each other, and
every refusal costs the same work, one argon2 verification, whatever the account
(unknown, disabled, with or without TOTP, with drive sessions), so neither the
answer nor its timing tells them apart. In a keyboard-interactive login the code
prompt follows any password; the attempt is counted, and audited, when the code
is answered or the client leaves without one, with the same work whether the
password was right or not.

argon2id is deliberately slow and WebDAV clients send their credentials with
every request, so a success is remembered in memory under a salted hash of the
protocol and the credential string and re-validated against the database
(account enabled, password unchanged, drive session or app password still
valid). Remembered logins are per protocol: a WebDAV drive session is never an
SFTP credential. A remembered SFTP login is a new connection and is audited like
any login; a remembered WebDAV login is the next request of the same drive.

The throttle's gate and the outcomes (audit, log line, metrics) are
appliance.service.login_outcomes; the app-password and drive-session rows are
appliance.service.login_rows.
"""
import hashlib
import ipaddress
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias

from sqlalchemy import or_, select, update

from strongroom.appliance.db import Database, repo
from strongroom.appliance.db.dml import rowcount
from strongroom.appliance.db.models import AppPassword, Client, DriveSession, User
from strongroom.appliance.errors import AuthFailed, NotFound
from strongroom.appliance.service.audit import Chain
from strongroom.appliance.service.lockout import Attempt, Lockout
from strongroom.appliance.service.login_outcomes import FAILED, Outcomes
from strongroom.appliance.service.login_rows import CredentialRows, DriveSessionOptions
from strongroom.appliance.service.principal import Principal
from strongroom.auth import app_passwords, totp
from strongroom.auth.passwords import verify_password
from strongroom.config.loader import Config

if TYPE_CHECKING:
    from strongroom.appliance.metrics import Metrics

CACHE_SECONDS = 300
# Checked against a wrong code when the password was wrong: the same work as a right one.
_DUMMY_TOTP = totp.new_secret()
# A cached plain-password WebDAV login re-reads the account this often; drive
# sessions, app passwords and every new SFTP connection are re-read each time (a
# revocation takes effect at once).
RECHECK_SECONDS = 5
TOUCH_SECONDS = 60          # how often last_used of a drive session / app password is written
_METHOD = {"code": "password+totp", "drive": "drive-session", "app": "app-password"}


class AuthOptions(DriveSessionOptions, Protocol):
    """The options of the [auth] section logins read."""
    @property
    def app_passwords_sftp(self) -> bool: ...
    @property
    def drive_session_ipv4_prefix(self) -> int: ...
    @property
    def drive_session_ipv6_prefix(self) -> int: ...


# What a checked credential opened: (principal, kind, drive session or app password id,
# the password hash it was checked against); see _Cached.
_Verified: TypeAlias = tuple[Principal, str, int | None, str]


@dataclass(frozen=True)
class Factor:
    """The outcome of a first factor. `principal` is None when it failed (already
    counted and audited): the caller still asks for a code, so a reply never tells
    which factor (or account) was wrong."""
    login: str
    principal: Principal | None
    needs_code: bool
    method: str
    attempt: Attempt | None = None   # the throttle's token of the attempt in flight


@dataclass
class _Cached:
    expires: float
    principal: Principal
    kind: str                # "password" | "drive" | "app" ("code" logins are not cached)
    row_id: int | None       # drive session or app password id
    stored_hash: str
    checked: float


class Authenticator:
    def __init__(self, db: Database, cfg: Config, lookup_key: bytes, audit_chain: Chain):
        """`lookup_key`: the key of drive-session lookups (derived from the master key);
        `audit_chain`: where login events go (appliance.service.audit.Chain)."""
        self.db = db
        self.cfg: AuthOptions = cfg.auth
        self.lockout = Lockout(db, cfg)
        self._rows = CredentialRows(db, self.cfg, lookup_key)
        self._outcomes = Outcomes(db, self.lockout, audit_chain)
        self._salt = os.urandom(16)
        self._cache: dict[bytes, _Cached] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[bytes, threading.Lock] = {}

    @property
    def metrics(self) -> "Metrics | None":
        """appliance.metrics.Metrics when the daemon counts logins, else None."""
        return self._outcomes.metrics

    @metrics.setter
    def metrics(self, metrics: "Metrics | None") -> None:
        self._outcomes.metrics = metrics

    # -- one-string logins ----------------------------------------------------------

    def password_login(self, login: str, secret: str, protocol: str,
                       address: str | None = None) -> Principal:
        """The principal for valid credentials; AuthFailed otherwise (one message for all)."""
        # The network is part of the key: a drive session works only where it was
        # opened; so is the protocol: a login remembered for one is not one for another.
        key = hashlib.sha256(self._salt + f"{protocol}\0{login}\0{secret}\0"
                                          f"{self._network(address)}".encode()).digest()
        # Parallel requests of a freshly mounted drive carry the same new code: the
        # first one verifies it and opens the drive session, the others wait for it.
        with self._key_lock(key):
            hit = self._cache.get(key)
            if hit is not None:
                self._outcomes.gate(login, protocol, address)
                # a new SFTP connection is a login of its own: the account is read
                # again, so a disabled or removed one does not connect even for
                # RECHECK_SECONDS
                if self._still_valid(hit, fresh=protocol != "webdav"):
                    if protocol != "webdav":   # a new connection: a login of its own
                        self._outcomes.succeeded(hit.principal, protocol, address,
                                        f"{_METHOD.get(hit.kind, hit.kind)} (remembered)")
                    return hit.principal
                self._forget(key)
            attempt = self._outcomes.begin(login, protocol, address)
            try:
                return self._checked_login(key, login, secret, protocol, address)
            finally:
                self.lockout.end(attempt)

    def _checked_login(self, key: bytes, login: str, secret: str, protocol: str,
                       address: str | None) -> Principal:
        found = self._verify(login, secret, protocol, address)
        if found is None:
            self._outcomes.failed(login, protocol, address, "password")
        principal, kind, row_id, stored = found
        if kind != "code":   # a code is single-use: its login is never replayed from memory
            self._remember(key, _Cached(time.monotonic() + CACHE_SECONDS, principal, kind,
                                        row_id, stored, time.monotonic()))
        self._outcomes.succeeded(principal, protocol, address, _METHOD.get(kind, kind))
        return principal

    def _verify(self, login: str, secret: str, protocol: str,
                address: str | None) -> _Verified | None:
        """(principal, kind, row id, stored hash) or None. A refusal always costs
        exactly one argon2 verification (see the module docstring)."""
        user = self._user(login)
        if user is None or barred(user):
            verify_password(None, secret)
            return None
        principal = principal_for(user)
        if user.totp_secret is None:
            if verify_password(user.password_hash, secret):
                return principal, "password", None, user.password_hash
            return None
        if app_passwords.looks_like(secret) and (protocol != "sftp" or
                                                 self.cfg.app_passwords_sftp):
            row_id = self._rows.app_password(user, secret)
            if row_id:
                return principal, "app", row_id, user.password_hash
        if protocol == "webdav":
            row_id = self._drive_session(user, secret, address)
            if row_id is not None:
                return principal, "drive", row_id, user.password_hash
        password, code = secret[:-totp.DIGITS], secret[-totp.DIGITS:]
        # the password is checked even when no code could follow it: the same work
        if not verify_password(user.password_hash, password) or not totp.looks_like_code(code):
            return None
        if not self._consume_code(user, code):
            return None
        if protocol != "webdav":
            return principal, "code", None, user.password_hash
        row_id = self._rows.open_drive_session(user, secret, self._network(address))
        return principal, "drive", row_id, user.password_hash

    # -- multi-step logins (SSH) ---------------------------------------------------------

    def first_factor(self, login: str, password: str, protocol: str,
                     address: str | None = None,
                     method: str = "keyboard-interactive") -> Factor:
        """Check a password typed at a prompt. A user without TOTP is done; everyone
        else (a TOTP user, a wrong password, an unknown account) is asked for a code,
        and the attempt stays in flight until `second_factor` or `abandoned` counts
        it: leaving at the code prompt does not make a guess free."""
        attempt = self._outcomes.begin(login, protocol, address)
        try:
            user = self._user(login)
            ok = verify_password(user.password_hash if user else None, password) \
                and user is not None and not barred(user)
        except BaseException:
            self.lockout.end(attempt)
            raise
        if ok and user is not None and user.totp_secret is None:
            self.lockout.end(attempt)
            principal = principal_for(user)
            self._outcomes.succeeded(principal, protocol, address, method)
            return Factor(login, principal, False, method)
        return Factor(login, principal_for(user) if ok and user is not None else None, True,
                      method, attempt)

    def key_factor(self, login: str, key_type: str, key_data: str, protocol: str,
                   address: str | None = None) -> Factor:
        """Whether `key_data` is one of the user's authorized keys. The signature is
        not checked yet (SSH asks before it signs): call `key_verified` once it is."""
        if self.lockout.judge(login, address)[0]:
            self._outcomes.refuse_blocked(login, protocol, address)
        with self.db.read() as s:
            user = repo.user_by_login(s, login)
            ok = user is not None and not barred(user) and any(
                k.key_type == key_type and k.key_data == key_data
                for k in repo.keys_of(s, user.id))
            if not ok or user is None:
                raise AuthFailed(FAILED)
            return Factor(login, principal_for(user), user.totp_secret is not None, "publickey")

    def key_verified(self, factor: Factor, protocol: str, address: str | None) -> None:
        """The client proved it holds the key: a login without TOTP is complete."""
        if not factor.needs_code:
            assert factor.principal is not None, "key_factor gives a key's principal"
            self._outcomes.succeeded(factor.principal, protocol, address, "publickey")

    def second_factor(self, factor: Factor, code: str, protocol: str,
                      address: str | None = None) -> Principal:
        """The principal if `factor` passed and `code` is a fresh code of its user.
        The same work either way: the answer's timing says nothing of the password."""
        try:
            if factor.attempt is None:   # after a key: each code is an attempt of its own
                self._outcomes.wait_at_gate(factor.login, protocol, address)
            user = self._user(factor.login)
            if factor.principal is None or user is None or barred(user) \
                    or user.id != factor.principal.user_id:
                totp.matching_step(_DUMMY_TOTP, code.strip())
                self._outcomes.failed(factor.login, protocol, address,
                                      f"{factor.method}: wrong password")
            if not self._consume_code(user, code.strip()):
                self._outcomes.failed(factor.login, protocol, address,
                                      f"{factor.method}: wrong code")
            self._outcomes.succeeded(factor.principal, protocol, address, f"{factor.method}+totp")
            return factor.principal
        finally:
            if factor.attempt is not None:
                self.lockout.end(factor.attempt)

    def abandoned(self, factor: Factor, protocol: str, address: str | None = None) -> None:
        """A first factor was given but its code never came: a failed attempt."""
        if not factor.needs_code:
            return
        why = "wrong password" if factor.principal is None else "password right, no code"
        try:
            self._outcomes.count_failure(factor.login, protocol, address,
                                f"{factor.method} abandoned: {why}")
        finally:
            if factor.attempt is not None:
                self.lockout.end(factor.attempt)

    def refused(self, login: str, protocol: str, address: str | None, method: str) -> None:
        """An attempt the protocol adapter refused on its own (a malformed answer)."""
        self._outcomes.count_failure(login, protocol, address, method)

    def principal_of(self, login: str) -> Principal:
        """The principal of an existing account, for admin tools that act as a user."""
        user = self._user(login)
        if user is None:
            raise NotFound(f"no user named {login!r}")
        return principal_for(user)

    # -- live sessions --------------------------------------------------------------------

    def ended_among(self, logins: dict[int, str]) -> set[int]:
        """Which of the users `logins` ({user id: login at login time}) were disabled,
        removed or renamed, or whose client was disabled: their live sessions end."""
        if not logins:
            return set()
        with self.db.read() as s:
            rows = s.execute(select(User.id, User.login).outerjoin(Client).where(
                User.id.in_(set(logins)), User.disabled.is_(False),
                or_(Client.id.is_(None), Client.disabled.is_(False)))).all()
        return set(logins) - {uid for uid, login in rows if logins[uid] == login}

    # -- checks -----------------------------------------------------------------------

    def _user(self, login: str) -> User | None:
        with self.db.read() as s:
            return repo.user_by_login(s, login)

    def _consume_code(self, user: User, code: str) -> bool:
        """Accept `code` if it is valid now and later than the last code accepted."""
        if user.totp_secret is None:    # no second factor (any more): no code is valid
            return False
        step = totp.matching_step(user.totp_secret, code)
        if step is None:
            return False
        with self.db.write() as s:
            done = s.execute(update(User).where(
                User.id == user.id, User.totp_secret == user.totp_secret,
                (User.totp_last_step.is_(None)) | (User.totp_last_step < step))
                .values(totp_last_step=step))
            return rowcount(done) == 1

    def _network(self, address: str | None) -> str:
        try:
            ip = ipaddress.ip_address(address or "0.0.0.0")
        except ValueError:
            ip = ipaddress.ip_address("0.0.0.0")
        prefix = (self.cfg.drive_session_ipv4_prefix if ip.version == 4
                  else self.cfg.drive_session_ipv6_prefix)
        return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))

    def _drive_session(self, user: User, secret: str, address: str | None) -> int | None:
        """The id of a live drive session of `user` opened with `secret` from this
        network: one indexed query, and an argon2 check only of the row it finds."""
        row = self._rows.drive_session(user, secret, self._network(address))
        if row is not None and verify_password(row.secret_hash, secret):
            return row.id
        return None

    def _still_valid(self, hit: _Cached, fresh: bool = False) -> bool:
        """Re-validate a remembered login against the database (see module docstring);
        `fresh`: now, even a password login checked less than RECHECK_SECONDS ago."""
        mono = time.monotonic()
        if hit.expires <= mono:
            return False
        if hit.kind == "password" and not fresh and mono - hit.checked < RECHECK_SECONDS:
            return True
        now = time.time()
        with self.db.read() as s:
            user = s.get(User, hit.principal.user_id)
            if user is None or barred(user) or user.password_hash != hit.stored_hash \
                    or user.login != hit.principal.login:   # renamed: log in with the new name
                return False
            if hit.kind == "password" and user.totp_secret is not None:
                return False    # TOTP was enrolled since: the password alone is not enough
            row: DriveSession | AppPassword | None = None
            if hit.kind == "drive":
                row = s.get(DriveSession, hit.row_id)
                if row is None or row.expires_at <= now or \
                        row.last_used_at <= now - self.cfg.drive_session_idle:
                    return False
            elif hit.kind == "app":
                row = s.get(AppPassword, hit.row_id)
                if row is None or (row.expires_at is not None and row.expires_at <= now):
                    return False
        touch_after = min(TOUCH_SECONDS, self.cfg.drive_session_idle / 4)
        if row is not None and now - (row.last_used_at or 0) > touch_after:
            self._rows.touch(type(row), row.id, now)
        hit.checked = mono
        return True

    def _key_lock(self, key: bytes) -> threading.Lock:
        with self._lock:
            if len(self._key_locks) > 10000:
                self._key_locks = {k: v for k, v in self._key_locks.items() if v.locked()}
            return self._key_locks.setdefault(key, threading.Lock())

    def _remember(self, key: bytes, entry: _Cached) -> None:
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[key] = entry

    def _forget(self, key: bytes) -> None:
        with self._lock:
            self._cache.pop(key, None)


def barred(user: User) -> bool:
    """A disabled account, or an account of a disabled client, does not log in."""
    return user.disabled or (user.client is not None and user.client.disabled)


def principal_for(user: User) -> Principal:
    return Principal(login=user.login, role=user.role,
                     client=user.client.name if user.client else None, user_id=user.id,
                     client_id=user.client_id)
