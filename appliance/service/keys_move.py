"""`strongroom keys move SOURCE`: the master key moved to another [keys] master_key_source.

The key is not changed (no rotation): it is written to the new place first (a file
never over an existing one; a passphrase sealing; a systemd credential cannot be written
by us, so the key goes to a file of the admin's choosing for `systemd-creds encrypt`),
read back from there where we can, then the config names the new source, and only then
is the old copy removed (a file overwritten with zeros, fsynced and unlinked). A failure
before the config changes leaves the old source in use; moving to the source in use is
refused. The daemon keeps the key it opened; a restart makes it read the new source.
Moving from one passphrase to another changes the passphrase.
"""
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom import config as configmod
from strongroom.appliance import keysource
from strongroom.appliance.errors import BadRequest
from strongroom.appliance.keysource import (CredentialSource, FileSource, KeySource,
                                            PassphraseSource)

if TYPE_CHECKING:
    from strongroom.appliance.app import App

Json = dict[str, Any]


def move_key(app: "App", value: str, ask_new: keysource.Ask | None,
             key_to: Path | None = None) -> Json:
    """Move the master key of `app` to the source `value` names; see the module."""
    value = _checked(app, value)
    old: KeySource = app.key_source
    new = keysource.named(value, app.data_dir, Path(app.config.storage.master_key_file), ask_new)
    if new.describe() == old.describe() and not isinstance(new, PassphraseSource):
        raise BadRequest(f"the master key is already in {old.describe()}; nothing was changed")
    key = old.load()
    written = _write(old, new, key, key_to)
    configmod.set_options(app.data_dir, "keys", {"master_key_source": value})
    removed = _remove_old(old, new)
    _audit(app, old, new)
    return {"key_id": keysource.key_id(key), "from": old.describe(), "to": new.describe(),
            "source": value, "key_file": written, "removed": removed}


def _checked(app: "App", value: str) -> str:
    """`value` as the config option accepts it (its converter), else BadRequest."""
    try:
        return str(configmod.SCHEMA["keys"]["master_key_source"].convert(value))
    except ValueError as e:
        raise BadRequest(f"SOURCE: {e}") from None


def _write(old: KeySource, new: KeySource, key: bytes, key_to: Path | None) -> str | None:
    """Put `key` into `new`; for a credential, into `key_to` (the admin seals it)."""
    if isinstance(new, CredentialSource):
        if key_to is None:
            raise BadRequest(f"{new.describe()} is sealed by systemd-creds, not by us: give "
                             "--key-to FILE (off the data disk) to receive the key; nothing "
                             "was changed")
        keysource.write_key_file(key_to, key)
        return str(key_to)
    if isinstance(new, (FileSource, PassphraseSource)) and os.path.lexists(new.path) \
            and not (isinstance(old, PassphraseSource) and old.path == new.path):
        raise BadRequest(f"{new.path} exists: a key file is never written over another "
                         "file; nothing was changed")
    new.store(key)
    if new.load() != key:        # read back before the config names it
        raise BadRequest(f"{new.describe()} does not give the key back; the old source "
                         "stays in use")
    return None


def _remove_old(old: KeySource, new: KeySource) -> str | None:
    """The old copy removed (its path), unless the new source is the same file."""
    path = old.path if isinstance(old, (FileSource, PassphraseSource)) else None
    if path is None or (isinstance(new, (FileSource, PassphraseSource)) and new.path == path):
        return None
    try:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
        path.unlink()
    except OSError as e:
        raise BadRequest(f"the key is in its new place and the config names it, but the old "
                         f"copy {path} could not be removed ({e.strerror}): remove it") from None
    return str(path)


def _audit(app: "App", old: KeySource, new: KeySource) -> None:
    with app.db.write() as s:
        app.audit.append(s, actor=app.admin_name, protocol="cli", address=None,
                         action="keys-move", path=None,
                         detail=f"from={old.describe()} to={new.describe()}")
