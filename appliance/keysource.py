"""Where the master key comes from (`[keys] master_key_source`), and where a new one goes.

A source is named in the config as `file:PATH` (the default: [storage] master_key_file),
`systemd-credential:NAME` or `passphrase`. `load()` gives the 32-byte key or raises
KeyUnavailable with one line saying what is wrong and what to do; `store()` replaces
the key (a finished rotation, an imported recovery key) atomically, or raises
KeyUnavailable saying what the admin must do instead (a credential is sealed by
systemd-creds, not by us). `key_id()` names a key without revealing it.
"""
import hashlib
import os
from abc import ABC, abstractmethod
from pathlib import Path

from strongroom.config import Config
from strongroom.providers import crypto
from strongroom.providers.errors import StorageError
from strongroom.providers.fsutil import fsync_dir


class KeyUnavailable(StorageError):
    """The master key cannot be had: missing, unreadable, wrong size or wrong passphrase."""


def key_id(key: bytes) -> str:
    """A short public name of a key: 16 hex digits of a hash that is useless for
    anything else (the key cannot be recovered or tested faster from it)."""
    return hashlib.blake2b(key, digest_size=8, person=b"strongroom kid").hexdigest()


class KeySource(ABC):
    """One place the master key is kept."""

    @abstractmethod
    def describe(self) -> str:
        """How `status` and error lines name it, e.g. 'file /etc/strongroom/master.key'."""

    @abstractmethod
    def load(self) -> bytes:
        """The master key; KeyUnavailable (one clear line) if it cannot be had."""

    @abstractmethod
    def store(self, key: bytes) -> None:
        """Replace the master key by `key`, atomically and durably; KeyUnavailable
        naming what to do if this source cannot be written by us."""


class FileSource(KeySource):
    """32 raw bytes in a file of mode 0600 (today's `master.key`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"file {self.path}"

    def load(self) -> bytes:
        try:
            key = self.path.read_bytes()
        except FileNotFoundError:
            raise KeyUnavailable(f"master key file {self.path} does not exist") from None
        except OSError as e:
            raise KeyUnavailable(f"cannot read master key file {self.path}: {e.strerror}") from None
        if len(key) != crypto.KEY_SIZE:
            raise KeyUnavailable(f"master key file {self.path} must hold exactly "
                                 f"{crypto.KEY_SIZE} bytes, it holds {len(key)}")
        return key

    def store(self, key: bytes) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise KeyUnavailable(f"cannot write master key file {self.path}: "
                                 f"{e.strerror}") from None


def from_config(config: Config) -> KeySource:
    """The source the config names (today: always the [storage] master_key_file)."""
    return FileSource(Path(config.storage.master_key_file))
