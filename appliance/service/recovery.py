"""The recovery key: the master key sealed under a passphrase (providers.sealed), for a safe.

`export_recovery` writes it (never over an existing file; temp, fsync, then a
no-replace rename; mode 0600) and audits keys-export-recovery with the key id only.

`import_recovery` works on an appliance that cannot start (its key is missing or
wrong), so it opens the database directly, not through App: then, through the
configured key source: the same key already there changes nothing; a different key
there that unwraps every client key is refused (without clients any readable key
counts, since the audit chain is keyed by it); a recovered key that does not unwrap
every client key is refused (another appliance's, or older than a rotation);
otherwise the key is stored, and the appliance, openable now, audits
keys-import-recovery.

`recovered_key` opens a recovery file for `strongroom restore --recovery`.
"""
import errno
import os
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from strongroom import config as configmod
from strongroom.appliance import keysource
from strongroom.appliance.app import App
from strongroom.appliance.db import Database, default_url
from strongroom.appliance.db.models import Client
from strongroom.appliance.errors import BadRequest, Conflict
from strongroom.providers import crypto, sealed
from strongroom.providers.errors import CorruptData, StorageError
from strongroom.providers.fsutil import fsync_dir, write_new_private

Json = dict[str, Any]
MIN_PASSPHRASE = 12     # characters; argon2id slows guessing, it cannot save "1234"
_MAX_FILE = 64 * 1024


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise BadRequest(f"a recovery passphrase needs at least {MIN_PASSPHRASE} characters "
                         f"(this one has {len(passphrase)})")


def export_recovery(app: App, to: Path, passphrase: str) -> Json:
    """Write the recovery file `to`; {"file", "key_id", "kdf"}."""
    check_passphrase(passphrase)
    to = Path(to).absolute()
    if os.path.lexists(to):
        raise Conflict(f"{to} already exists: a recovery file is never overwritten")
    data = sealed.seal(app.key_source.load(), passphrase, sealed.RECOVERY)
    _write_new(to, data)
    header = sealed.describe(data)
    with app.db.write() as s:
        app.audit.append(s, actor=app.admin_name, protocol="cli", address=None,
                         action="keys-export-recovery", path=None,
                         detail=f"key_id={header['key_id']}")
    return {"file": str(to), "key_id": header["key_id"], "kdf": {
        k: v for k, v in header["kdf"].items() if k != "salt"}}


def _write_new(to: Path, data: bytes) -> None:
    """`data` into the new file `to`, whole or not at all, never replacing a file."""
    tmp = to.with_name(f".{to.name}.{os.getpid()}.tmp")
    try:
        write_new_private(tmp, data)
        _rename_no_replace(tmp, to)
        fsync_dir(to.parent)
    except OSError as e:
        if e.errno == errno.EEXIST and e.filename == str(to):
            raise Conflict(f"{to} already exists: a recovery file is never "
                           "overwritten") from None
        raise BadRequest(f"cannot write {to}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _rename_no_replace(tmp: Path, to: Path) -> None:
    """A link then an unlink: atomic, and EEXIST rather than replacing a file made
    meanwhile. File systems without hard links (a FAT USB stick) get a plain rename
    after a last look."""
    try:
        os.link(tmp, to)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise OSError(e.errno, e.strerror, str(to)) from None
        if os.path.lexists(to):
            raise OSError(errno.EEXIST, os.strerror(errno.EEXIST), str(to)) from None
        os.rename(tmp, to)


def read_recovery_file(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(_MAX_FILE + 1)
    except OSError as e:
        raise BadRequest(f"cannot read the recovery file {path}: {e.strerror}") from None


def recovered_key(path: Path, passphrase: str) -> bytes:
    """The master key in the recovery file `path`; one clear error otherwise."""
    try:
        return sealed.open_sealed(read_recovery_file(path), passphrase, sealed.RECOVERY)
    except sealed.SealedKeyError as e:
        raise sealed.SealedKeyError(f"recovery file {path}: {e}") from None


def import_recovery(data_dir: Path, path: Path, passphrase: str, actor: str,
                    ask: keysource.Ask | None = None, key_to: Path | None = None) -> Json:
    """Put the master key of the recovery file `path` back; see the module. `ask`: the
    passphrase of a passphrase source (its current key, or the one to seal with).
    `key_to`: write the key to this new file instead (a source we cannot write, a
    systemd credential, is then sealed from it by the admin).
    {"key_id", "source", "changed", "client_keys", "key_file"}."""
    data_dir = Path(data_dir).resolve()
    config = configmod.load(data_dir)
    key = recovered_key(path, passphrase)
    kid = sealed.key_id(key)
    wrapped = _client_keys(config, data_dir)
    source = keysource.from_config(config, ask)
    result = {"key_id": kid, "source": source.describe(), "client_keys": len(wrapped),
              "key_file": None if key_to is None else str(key_to)}
    if key_to is None and not source.writable:
        raise keysource.KeyUnavailable(f"the key source ({source.describe()}) cannot be "
                                       "written by strongroom: give --key-to FILE (off the "
                                       "data disk) and seal it from there; nothing was changed")
    current = None if key_to is not None else _current(source)
    if current == key:
        return {**result, "changed": False}
    if current is not None and _unwrapping(current, wrapped) == len(wrapped):
        raise Conflict(f"the key source ({source.describe()}) holds another key (id "
                       f"{sealed.key_id(current)}) that opens this appliance's client keys: "
                       f"the recovery key (id {kid}) is not put in its place")
    opened = _unwrapping(key, wrapped)
    if opened < len(wrapped):
        raise Conflict(_not_ours(kid, opened, len(wrapped)))
    if key_to is not None:
        keysource.write_key_file(key_to, key)
    else:
        source.store(key)
    _audit_import(data_dir, key, source, actor)
    return {**result, "changed": True}


def _client_keys(config: configmod.Config, data_dir: Path) -> list[bytes]:
    """Every client's (and library's) wrapped key, read without App (which needs the key)."""
    if not config.database.url and not (data_dir / "strongroom.db").is_file():
        raise BadRequest(f"{data_dir} has no database: not an initialised appliance")
    db = Database(config.database.url or default_url(data_dir))
    try:
        with db.read() as s:
            return list(s.scalars(select(Client.wrapped_key)))
    except SQLAlchemyError as e:    # unreachable, no tables: nothing to check the key on
        raise BadRequest(f"cannot read the client keys of {data_dir}: "
                         f"{str(e.orig if hasattr(e, 'orig') else e).splitlines()[0][:200]}"
                         ) from None
    finally:
        db.dispose()


def _unwrapping(key: bytes, wrapped: list[bytes]) -> int:
    """How many of the wrapped client keys `key` unwraps."""
    count = 0
    for w in wrapped:
        try:
            crypto.unwrap_key(key, w)
            count += 1
        except CorruptData:
            pass
    return count


def _not_ours(kid: str, opened: int, total: int) -> str:
    if opened == 0:
        return (f"the recovery key (id {kid}) does not open this appliance's client keys: "
                "it is another appliance's, or older than a master key rotation; "
                "nothing was changed")
    return (f"the recovery key (id {kid}) opens only {opened} of the {total} client keys "
            "(a master key rotation is unfinished); nothing was changed")


def _current(source: keysource.KeySource) -> bytes | None:
    """The key the source holds now, or None if it holds none that can be read."""
    try:
        return source.load()
    except StorageError:
        return None


class _Given(keysource.KeySource):
    """The key just stored, so that opening the appliance does not ask for it again."""

    def __init__(self, key: bytes, source: keysource.KeySource) -> None:
        self._key, self._source = key, source

    def describe(self) -> str:
        return self._source.describe()

    def load(self) -> bytes:
        return self._key

    def store(self, key: bytes) -> None:
        self._source.store(key)


def _audit_import(data_dir: Path, key: bytes, source: keysource.KeySource,
                  actor: str) -> None:
    app = App(data_dir, key_source=_Given(key, source))
    try:
        with app.db.write() as s:
            app.audit.append(s, actor=actor, protocol="cli", address=None,
                             action="keys-import-recovery", path=None,
                             detail=f"key_id={sealed.key_id(key)}")
    finally:
        app.close()
