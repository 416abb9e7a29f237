"""Password login for every protocol.

argon2id is deliberately slow (tens of milliseconds), and WebDAV clients send
their Basic credentials with every request, so a successful verification is
remembered for a short while under a salted hash of the credentials. The cached
entry is tied to the stored password hash: a password change or a disabled
account takes effect on the next request.
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
_FAILED = "invalid login or password"


class Authenticator:
    def __init__(self, db):
        self.db = db
        self._salt = os.urandom(16)
        self._cache: dict[bytes, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def password_login(self, login: str, password: str, protocol: str, address=None) -> Principal:
        """Return the principal for valid credentials; raise AuthFailed otherwise."""
        with self.db.read() as s:
            user = repo.user_by_login(s, login)
            principal = _principal(user) if user is not None else None
            stored = user.password_hash if user is not None else None
            disabled = user is None or user.disabled
        key = hashlib.sha256(self._salt + f"{login}\0{password}".encode()).digest()
        with self._lock:
            hit = self._cache.get(key)
        if hit and hit[0] > time.monotonic() and hit[1] == stored and not disabled:
            return principal
        if not verify_password(stored, password) or disabled:
            self._record(login, protocol, address, "failed")
            raise AuthFailed(_FAILED)
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[key] = (time.monotonic() + CACHE_SECONDS, stored)
        self._record(login, protocol, address, "ok")
        return principal

    def _record(self, login, protocol, address, outcome) -> None:
        with self.db.write() as s:
            audit.append(s, actor=login, protocol=protocol, address=address, action="login",
                         outcome=outcome)


def _principal(user) -> Principal:
    return Principal(login=user.login, role=user.role,
                     client=user.client.name if user.client else None, user_id=user.id)
