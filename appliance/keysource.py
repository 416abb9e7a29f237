"""Where the master key comes from (`[keys] master_key_source`), and where a new one goes.

A source is named in the config as `file:PATH` (the default: [storage] master_key_file),
`systemd-credential:NAME` (what systemd hands a unit with LoadCredentialEncrypted=) or
`passphrase[:PATH]` (the key sealed by providers.sealed; the passphrase is asked only
when the key is needed). `load()` gives the 32-byte key or raises
KeyUnavailable with one line saying what is wrong and what to do; `store()` replaces
the key (a finished rotation, an imported recovery key) atomically, or raises
KeyUnavailable saying what the admin must do instead (a credential is sealed by
systemd-creds, not by us). `key_id()` names a key without revealing it.
"""
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path

from strongroom.config import Config
from strongroom.providers import crypto, sealed
from strongroom.providers.keys import master_key_id
from strongroom.providers.errors import StorageError
from strongroom.providers.fsutil import fsync_dir, write_new_private


class KeyUnavailable(StorageError):
    """The master key cannot be had: missing, unreadable, wrong size or wrong passphrase."""


# A short public name of a key: 16 hex digits of a hash that is useless for anything
# else (the key cannot be recovered or tested faster from it); one definition, in providers.
key_id = master_key_id


class KeySource(ABC):
    """One place the master key is kept."""

    # False: store() always refuses (systemd seals a credential, not us); a rotation or
    # an imported recovery key then needs a file of the admin's choosing (write_key_file).
    writable = True

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
        return _exact_key(_read(self.path, "master key file"), f"master key file {self.path}")

    def store(self, key: bytes) -> None:
        _write_atomically(self.path, key, "master key file")


# What the daemon's unit and the CLI's systemd-run give to a credential source.
CREDSTORE = "/etc/credstore.encrypted"


class CredentialSource(KeySource):
    """$CREDENTIALS_DIRECTORY/NAME: systemd decrypts the credential (sealed by
    `systemd-creds encrypt` with the TPM or the host key) for the unit's processes only."""

    writable = False

    def __init__(self, name: str, environ: Mapping[str, str] = os.environ) -> None:
        self.name, self._environ = name, environ

    def describe(self) -> str:
        return f"systemd credential {self.name}"

    def load(self) -> bytes:
        where = self._environ.get("CREDENTIALS_DIRECTORY")
        given = (f"LoadCredentialEncrypted={self.name}:{CREDSTORE}/{self.name}")
        if not where:
            raise KeyUnavailable(
                f"the master key is the systemd credential {self.name} and "
                "$CREDENTIALS_DIRECTORY is not set: start the daemon from its unit "
                f"({given}), and run a CLI command as 'systemd-run --pipe --wait "
                f"-p {given} strongroom ...'")
        path = Path(where) / self.name
        if not path.exists():
            raise KeyUnavailable(f"no credential {self.name} in $CREDENTIALS_DIRECTORY "
                                 f"({where}): the unit (or systemd-run) needs -p {given}")
        return _exact_key(_read(path, "credential"), f"credential {path}")

    def store(self, key: bytes) -> None:
        """We cannot seal a credential, and a key is never left on the data disk:
        KeyUnavailable says how to get the key into a file of the admin's choosing."""
        raise KeyUnavailable(
            f"the master key is the systemd credential {self.name}, which only systemd "
            "seals: have the key written to a file off the data disk (keys rotate-master "
            "--new-key-to FILE, keys import-recovery --key-to FILE), then run "
            f"'systemd-creds encrypt --name={self.name} FILE {CREDSTORE}/{self.name}', "
            "'shred -u FILE', and restart the daemon")


# How a PassphraseSource gets the passphrase when it first needs it (the CLI: a file,
# else a terminal prompt, else KeyUnavailable saying how to give it).
Ask = Callable[[], str]


class PassphraseSource(KeySource):
    """The key sealed by a passphrase (argon2id + AES-256-GCM, providers.sealed). The
    passphrase is asked once, when the key is first needed, and kept (in memory) so
    that `store()` can seal a new key with it."""

    def __init__(self, path: Path, ask: Ask | None = None) -> None:
        self.path, self._ask = Path(path), ask
        self._passphrase: str | None = None
        self._key: bytes | None = None
        # the sealed file the key was opened from (inode, size, mtime): a rotation
        # finished by another process replaces it, and load() must then give the new key
        self._opened: tuple[int, int, int] | None = None

    def describe(self) -> str:
        return f"passphrase, sealed in {self.path}"

    def present(self) -> None:
        """KeyUnavailable unless the sealed file can be read (asks nothing)."""
        _read(self.path, "sealed master key file")

    def load(self) -> bytes:
        """The key; opened again (with the passphrase kept) when the sealed file was
        replaced since, so that a daemon sees the key a rotation stored."""
        if self._key is None or self._identity() != self._opened:
            self.unlock(self._passphrase if self._passphrase is not None else self._asked())
        assert self._key is not None
        return self._key

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def unlock(self, passphrase: str) -> bytes:
        """Open the key with `passphrase` and keep both; KeyUnavailable if it is wrong."""
        opened = self._identity()
        data = _read(self.path, "sealed master key file")
        try:
            key = sealed.open_sealed(data, passphrase, sealed.MASTER_KEY)
        except sealed.WrongPassphrase:
            raise KeyUnavailable(f"wrong passphrase for the master key ({self.path})") from None
        except sealed.SealedKeyError as e:
            raise KeyUnavailable(f"{self.path}: {e}") from None
        self._passphrase, self._key, self._opened = passphrase, key, opened
        return key

    def passphrase(self) -> str:
        """The passphrase it opened with, else the one `ask` gives (kept)."""
        if self._passphrase is None:
            self._passphrase = self._asked()
        return self._passphrase

    def store(self, key: bytes) -> None:
        passphrase = self.passphrase()
        _write_atomically(self.path, seal_master_key(key, passphrase), "sealed master key file")
        self._passphrase, self._key, self._opened = passphrase, key, self._identity()

    def _asked(self) -> str:
        if self._ask is None:
            raise KeyUnavailable(f"the master key is sealed by a passphrase ({self.path}) "
                                 "and none was given")
        return self._ask()


def seal_master_key(key: bytes, passphrase: str) -> bytes:
    """What a PassphraseSource's file holds for `key`."""
    try:
        return sealed.seal(key, passphrase, sealed.MASTER_KEY)
    except sealed.SealedKeyError as e:
        raise KeyUnavailable(str(e)) from None


def read_passphrase_file(path: Path) -> str:
    """The passphrase in `path`: its first line (a trailing newline is not part of it)."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise KeyUnavailable(f"cannot read the passphrase file {path}: {reason}") from None
    passphrase = text.split("\n", 1)[0].removesuffix("\r")
    if not passphrase:
        raise KeyUnavailable(f"the passphrase file {path} is empty")
    return passphrase


# More than any key file holds (a sealed one is under 1 KiB): a bound on what is read.
_MAX_READ = 64 * 1024


def _read(path: Path, what: str) -> bytes:
    """At most _MAX_READ + 1 bytes of the regular file `path`. Anything else is refused
    at once: a FIFO would block the start for good (SIGTERM included, since the open is
    retried after the signal) and /dev/zero would never end."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise KeyUnavailable(f"{what} {path} does not exist") from None
    except OSError as e:
        raise KeyUnavailable(f"cannot read {what} {path}: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise KeyUnavailable(f"{what} {path} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        try:
            return f.read(_MAX_READ + 1)
        except OSError as e:
            raise KeyUnavailable(f"cannot read {what} {path}: {e.strerror}") from None


def _exact_key(key: bytes, what: str) -> bytes:
    if len(key) != crypto.KEY_SIZE:
        raise KeyUnavailable(f"{what} must hold exactly {crypto.KEY_SIZE} bytes, "
                             f"it holds {len(key)}")
    return key


def _write_atomically(path: Path, data: bytes, what: str) -> None:
    """`path` holds `data` (mode 0600) or, on any failure, what it held before."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write_new_private(tmp, data)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise KeyUnavailable(f"cannot write {what} {path}: {e.strerror}") from None


def write_key_file(path: Path, key: bytes) -> None:
    """A new file `path` (0600, fsynced) holding `key`, for the admin to seal into a
    source we cannot write; never over an existing file (BadRequest-like KeyUnavailable)."""
    try:
        write_new_private(path, key)
    except FileExistsError:
        raise KeyUnavailable(f"{path} exists: a key file is never written over another "
                             "file") from None
    except OSError as e:
        raise KeyUnavailable(f"cannot write {path}: {e.strerror}") from None


# Where `passphrase` (without a path) keeps the sealed key, in the data directory.
SEALED_NAME = "master.key.sealed"


def from_config(config: Config, ask: Ask | None = None) -> KeySource:
    """The source [keys] master_key_source names; `ask` gives a passphrase source
    its passphrase (called only when the key is first needed)."""
    return named(str(config.get("keys", "master_key_source") or ""), config.data_dir,
                 Path(config.storage.master_key_file), ask)


def named(value: str, data_dir: Path, default_file: Path, ask: Ask | None = None) -> KeySource:
    """The source a (valid) master_key_source value names; relative paths are inside
    `data_dir`; "" is `default_file`."""
    kind, _, arg = value.partition(":")
    if kind == "systemd-credential":
        return CredentialSource(arg)
    if kind == "passphrase":
        return PassphraseSource(_path(data_dir, arg or SEALED_NAME), ask)
    if kind == "file":
        return FileSource(_path(data_dir, arg))
    return FileSource(Path(default_file))


def _path(data_dir: Path, given: str) -> Path:
    """A path of the option, relative ones inside the data directory (as other paths)."""
    return (Path(data_dir) / os.path.expanduser(given.strip())).resolve()
