"""The key hierarchy: master key (a file) -> per-client keys -> per-version data keys.

Client keys are stored wrapped by the master key; data keys are stored wrapped by
their client's key. Rotating the master key re-wraps client keys only; destroying
a client's wrapped key makes all its data unreadable at once.
"""
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.providers import crypto
from strongroom.providers.digest import client_digest_key
from strongroom.providers.errors import StorageError


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


class KeyRing:
    """Makes and unwraps keys below one master key."""

    def __init__(self, master_key: bytes):
        self._master = master_key

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (HKDF-SHA256 of the master key): never
        stored, the same on every start, useless for anything else."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=f"strongroom {purpose}".encode()).derive(self._master)

    def new_client_key(self) -> bytes:
        """A fresh client key, returned wrapped by the master key (store this)."""
        return crypto.wrap_key(self._master, crypto.new_key())

    def upload_keys(self, wrapped_client_key: bytes) -> tuple[bytes, bytes, bytes]:
        """For a new version: (plain data key, data key wrapped by the client key,
        the client's digest key), unwrapping the client key once."""
        client_key = crypto.unwrap_key(self._master, wrapped_client_key)
        data_key = crypto.new_key()
        return data_key, crypto.wrap_key(client_key, data_key), client_digest_key(client_key)

    def digest_key(self, wrapped_client_key: bytes) -> bytes:
        """The key of a client's content digests (providers.digest); never stored."""
        return client_digest_key(crypto.unwrap_key(self._master, wrapped_client_key))

    def data_key(self, wrapped_client_key: bytes, wrapped_data_key: bytes) -> bytes:
        client_key = crypto.unwrap_key(self._master, wrapped_client_key)
        return crypto.unwrap_key(client_key, wrapped_data_key)
