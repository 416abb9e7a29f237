"""Password login for every protocol.

argon2id is deliberately slow (tens of milliseconds), and WebDAV clients send
their Basic credentials with every request, so a successful verification is
remembered for a short while under a salted hash of the credentials. The cached
entry is tied to the stored password hash and the account row is re-read every
few seconds: a password change or a disabled account takes effect within
RECHECK_SECONDS.
"""
import hashlib
import os
import threading
import time

from appliance.db import repo
from appliance.errors import AuthFailed
from appliance.session import audit
from appliance.session.principal import Principal
from auth.passwords import verify_password

CACHE_SECONDS = 300
# How stale a cached login may be before the account row is read again: a disabled
# account or a changed password takes effect within this many seconds.
RECHECK_SECONDS = 5
_FAILED = "invalid login or password"


class Authenticator:
    def __init__(self, db):
        self.db = db
        self._salt = os.urandom(16)
        # credential digest -> (cache expiry, stored hash, principal, user row checked at)
        self._cache: dict[bytes, tuple[float, str, Principal, float]] = {}
        self._lock = threading.Lock()

    def password_login(self, login: str, password: str, protocol: str, address=None) -> Principal:
        """Return the principal for valid credentials; raise AuthFailed otherwise."""
        key = hashlib.sha256(self._salt + f"{login}\0{password}".encode()).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit and hit[0] > now and now - hit[3] < RECHECK_SECONDS:
            return hit[2]  # verified recently and the account was unchanged moments ago
        with self.db.read() as s:
            user = repo.user_by_login(s, login)
            principal = _principal(user) if user is not None else None
            stored = user.password_hash if user is not None else None
            disabled = user is None or user.disabled
        if hit and hit[0] > now and hit[1] == stored and not disabled:
            self._remember(key, (hit[0], stored, principal, now))
            return principal
        if not verify_password(stored, password) or disabled:
            self._record(login, protocol, address, "failed")
            raise AuthFailed(_FAILED)
        self._remember(key, (now + CACHE_SECONDS, stored, principal, now))
        self._record(login, protocol, address, "ok")
        return principal

    def _remember(self, key, entry) -> None:
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[key] = entry

    def publickey_principal(self, login: str, key_type: str, key_data: str, protocol: str,
                            address=None) -> Principal:
        """The principal if `key_data` is one of the user's authorized keys, else AuthFailed.

        The caller has not yet verified the client's signature (SSH asks before it
        signs): it must call `record_success` once the signature has been checked.
        """
        with self.db.read() as s:
            user = repo.user_by_login(s, login)
            ok = user is not None and not user.disabled and any(
                k.key_type == key_type and k.key_data == key_data
                for k in repo.keys_of(s, user.id))
            principal = _principal(user) if ok else None
        if not ok:
            self._record(login, protocol, address, "failed", "publickey")
            raise AuthFailed(_FAILED)
        return principal

    def record_success(self, login: str, protocol: str, address, method: str) -> None:
        self._record(login, protocol, address, "ok", method)

    def _record(self, login, protocol, address, outcome, method="password") -> None:
        with self.db.write() as s:
            audit.append(s, actor=login, protocol=protocol, address=address, action="login",
                         outcome=outcome, detail=method)


def _principal(user) -> Principal:
    return Principal(login=user.login, role=user.role,
                     client=user.client.name if user.client else None, user_id=user.id)
