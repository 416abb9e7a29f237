"""The key hierarchy: master key -> per-client keys -> per-version data keys, and the
keys derived for other purposes.

Client keys are stored wrapped by a master key; data keys are stored wrapped by
their client's key. Every wrapped key is stored with the id of the key wrapping it,
so a KeyRing holds master keys by id (several during a rotation) and remembers
client keys by id: a client key never changes once made (a rotation makes a new one
with a new id), so what is remembered cannot go stale. Rotating the master key
re-wraps client keys only; destroying a client's wrapped key makes all its data
unreadable at once. Derived keys come from a base of their own (`set_derive_base`),
which a master rotation carries over, so they do not change with the master key.
"""
import hashlib
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.providers import crypto
from strongroom.providers.digest import client_digest_key
from strongroom.providers.errors import CorruptData, StorageError

# How many client keys a process remembers (a bound on memory, not a policy)
_REMEMBERED = 4096


def create_master_key(path: Path) -> None:
    """Write 32 random bytes to `path` with mode 0600; refuse to overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(crypto.new_key())
        f.flush()
        os.fsync(f.fileno())


def load_master_key(path: Path) -> bytes:
    try:
        key = Path(path).read_bytes()
    except OSError as e:
        raise StorageError(f"cannot read master key {path}: {e.strerror}") from None
    if len(key) != crypto.KEY_SIZE:
        raise StorageError(f"master key {path} must hold exactly {crypto.KEY_SIZE} bytes")
    return key


def master_key_id(key: bytes) -> str:
    """A master key's public name: 16 hex digits of a hash useless for anything else
    (the same as appliance.keysource.key_id, which providers cannot import)."""
    return hashlib.blake2b(key, digest_size=8, person=b"strongroom kid").hexdigest()


def new_key_id() -> str:
    """The id of a new client key (random: it says nothing about the key)."""
    return secrets.token_hex(8)


class UnknownKey(CorruptData):
    """A key is wrapped by a key this process does not hold."""


class KeyRing:
    """Master keys by id, the base of the derived keys, and client keys remembered by id.

    `reload`, when set (App), is called once when a master key id is not held, to
    read the key source and the next master key again (another process may have
    rotated); it must add what it finds with `add_master`."""

    def __init__(self, master_key: bytes, *, master_id: str | None = None):
        self.current_id = master_id or master_key_id(master_key)
        self._masters = {self.current_id: master_key}
        self._base = master_key      # until set_derive_base: what derived keys came from
        self._clients: dict[str, tuple[bytes, bytes]] = {}
        self._lock = threading.Lock()
        self.reload: Callable[[], None] | None = None

    # -- master keys ------------------------------------------------------------------

    def add_master(self, key: bytes, key_id: str | None = None) -> str:
        key_id = key_id or master_key_id(key)
        self._masters[key_id] = key
        return key_id

    def holds(self, key_id: str) -> bool:
        return key_id in self._masters

    def held(self) -> list[str]:
        return sorted(self._masters)

    def master(self, key_id: str) -> bytes:
        """The master key `key_id`, reloading once if it is not held; UnknownKey if
        it still is not."""
        key = self._masters.get(key_id)
        if key is None and self.reload is not None:
            with self._lock:
                if key_id not in self._masters:
                    self.reload()
            key = self._masters.get(key_id)
        if key is None:
            raise UnknownKey(f"a key is wrapped by master key id {key_id}, which this "
                             f"process does not hold (it holds {', '.join(self.held())})")
        return key

    def wrap(self, master_id: str, key: bytes) -> bytes:
        return crypto.wrap_key(self.master(master_id), key)

    def unwrap(self, master_id: str | None, wrapped: bytes) -> bytes:
        """`wrapped` unwrapped by the master key `master_id` (None: a row from before
        key ids, tried with the key the source gave)."""
        return crypto.unwrap_key(self.master(master_id or self.current_id), wrapped)

    # -- derived keys -----------------------------------------------------------------

    def set_derive_base(self, base: bytes) -> None:
        self._base = base

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (HKDF-SHA256 of the derive base): never
        stored, the same on every start and across master rotations, useless for
        anything else."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=f"strongroom {purpose}".encode()).derive(self._base)

    # -- client keys ------------------------------------------------------------------

    def remember(self, key_id: str, client_key: bytes, digest_key: bytes) -> None:
        """Remember client key `key_id` and the digest key of its client."""
        if len(self._clients) >= _REMEMBERED:
            self._clients.clear()
        self._clients[key_id] = (client_key, digest_key)

    def remembered(self, key_id: str) -> tuple[bytes, bytes] | None:
        """(client key, digest key) of client key `key_id`, if remembered."""
        return self._clients.get(key_id)

    def forget_clients(self) -> None:
        self._clients.clear()

    # -- by wrapped values, without ids (tests, and rows of a backup) ------------------

    def digest_key(self, wrapped_client_key: bytes, master_id: str | None = None) -> bytes:
        """The derived digest key of a client (providers.digest) whose key has never
        been rotated; never stored."""
        return client_digest_key(self.unwrap(master_id, wrapped_client_key))

    def data_key(self, wrapped_client_key: bytes, wrapped_data_key: bytes,
                 master_id: str | None = None) -> bytes:
        client_key = self.unwrap(master_id, wrapped_client_key)
        return crypto.unwrap_key(client_key, wrapped_data_key)
