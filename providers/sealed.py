"""The sealed-key file: a 32-byte key encrypted under a passphrase, for a safe or a disk.

One small JSON document (so that a person who finds it can tell what it is):

    {"format": "strongroom sealed key", "version": 1, "purpose": "recovery",
     "key_id": "<16 hex>", "created_at": "...", "note": "...",
     "kdf": {"name": "argon2id", "time_cost": 3, "memory_kib": 65536, "parallelism": 1,
             "salt": "<base64>"},
     "cipher": "AES-256-GCM", "nonce": "<base64>", "ciphertext": "<base64>"}

The key encrypting the key is argon2id(passphrase, salt) with the parameters in the file
(so that a later version can raise them and still open older files); every field but the
ciphertext is the AES-GCM associated data (canonical JSON), so a changed header fails
authentication just as a changed ciphertext or a wrong passphrase does: WrongPassphrase.
Anything that is not such a document is NotSealedKey; neither ever shows a traceback.
`purpose` keeps a recovery file from being taken for the passphrase source's key file
(appliance.keysource) and the other way round.
"""
import base64
import binascii
import json
import os
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from argon2.exceptions import HashingError
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.providers.errors import StorageError
from strongroom.providers.keys import master_key_id

FORMAT = "strongroom sealed key"
VERSION = 1
MASTER_KEY = "master key"        # the passphrase source's key file
RECOVERY = "recovery"            # `strongroom keys export-recovery`
PURPOSES = (MASTER_KEY, RECOVERY)
KEY_SIZE = 32
_MAX_FILE = 64 * 1024            # a sealed key is under 1 KiB; more is not one
_NOTES = {MASTER_KEY: "Strongroom's master key, encrypted with the unlock passphrase.",
          RECOVERY: "A Strongroom recovery key: the master key encrypted with a passphrase. "
                    "Keep it in a safe; `strongroom keys import-recovery` or "
                    "`strongroom restore --recovery` use it."}


class SealedKeyError(StorageError):
    """A sealed key cannot be made or opened (the message says why, in one line)."""


class NotSealedKey(SealedKeyError):
    """The data is not a Strongroom sealed key file (or one of a newer version)."""


class WrongPassphrase(SealedKeyError):
    """The passphrase does not open the file, or the file was changed."""


@dataclass(frozen=True)
class Cost:
    """argon2id parameters. The default: RFC 9106's second recommended profile's
    memory (64 MiB) at t=3, about a third of a second on a server core."""
    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 1


# What a file may ask of the opener: enough room to grow, not a way to exhaust the
# machine with a hand-made file (4 GiB, a few minutes at most).
_LIMITS = {"time_cost": (1, 64), "memory_kib": (8 * 1024, 4 * 1024 * 1024),
           "parallelism": (1, 16)}


# The key's public name (one definition: providers.keys.master_key_id)
key_id = master_key_id


def seal(key: bytes, passphrase: str, purpose: str, cost: Cost = Cost()) -> bytes:
    """The sealed-key file (UTF-8 JSON) of `key` under `passphrase`."""
    if len(key) != KEY_SIZE:
        raise SealedKeyError(f"a sealed key holds {KEY_SIZE} bytes, not {len(key)}")
    if purpose not in PURPOSES:
        raise SealedKeyError(f"unknown sealed key purpose {purpose!r}")
    if not passphrase:
        raise SealedKeyError("an empty passphrase cannot seal a key")
    salt, nonce = os.urandom(16), os.urandom(12)
    header: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "purpose": purpose, "key_id": key_id(key),
        "created_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "note": _NOTES[purpose],
        "kdf": {"name": "argon2id", "time_cost": cost.time_cost,
                "memory_kib": cost.memory_kib, "parallelism": cost.parallelism,
                "salt": _b64(salt)},
        "cipher": "AES-256-GCM", "nonce": _b64(nonce)}
    kek = _derive(passphrase, salt, cost)
    sealed = AESGCM(kek).encrypt(nonce, key, _aad(header))
    return (json.dumps({**header, "ciphertext": _b64(sealed)}, indent=2) + "\n").encode()


def open_sealed(data: bytes, passphrase: str, purpose: str) -> bytes:
    """The key sealed in `data`; NotSealedKey, SealedKeyError (another purpose) or
    WrongPassphrase (wrong passphrase, or the file was changed)."""
    header, ciphertext = _parse(data)
    if header["purpose"] != purpose:
        raise SealedKeyError(f"this sealed key file holds a {header['purpose']}, "
                             f"not a {purpose}")
    if not passphrase:
        raise WrongPassphrase("the passphrase is empty")
    kdf = header["kdf"]
    cost = Cost(kdf["time_cost"], kdf["memory_kib"], kdf["parallelism"])
    kek = _derive(passphrase, _unb64(kdf["salt"], "salt"), cost)
    try:
        key = AESGCM(kek).decrypt(_unb64(header["nonce"], "nonce"), ciphertext, _aad(header))
    except InvalidTag:
        raise WrongPassphrase("wrong passphrase, or the sealed key file was changed") from None
    if len(key) != KEY_SIZE or key_id(key) != header["key_id"]:
        raise WrongPassphrase("the sealed key file was changed")   # sealed wrongly: unreachable
    return key


def describe(data: bytes) -> dict[str, Any]:
    """The header of a sealed-key file (purpose, key id, when made, argon2 cost),
    without the passphrase; NotSealedKey if it is not one."""
    return _parse(data)[0]


def _derive(passphrase: str, salt: bytes, cost: Cost) -> bytes:
    # NFC: the same passphrase typed on another system's keyboard gives the same bytes
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    try:
        return hash_secret_raw(secret, salt, time_cost=cost.time_cost,
                               memory_cost=cost.memory_kib, parallelism=cost.parallelism,
                               hash_len=KEY_SIZE, type=Type.ID)
    except HashingError as e:     # the file's memory cost is more than this machine gives
        raise SealedKeyError(f"argon2id with {cost.memory_kib // 1024} MiB failed: {e}") from None


def _aad(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def _parse(data: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, ciphertext) of a well-formed file of this version; NotSealedKey else."""
    if len(data) > _MAX_FILE:
        raise NotSealedKey("not a Strongroom sealed key file (far too large)")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise NotSealedKey("not a Strongroom sealed key file (not its JSON format)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise NotSealedKey("not a Strongroom sealed key file")
    if doc.get("version") != VERSION:
        raise NotSealedKey(f"a Strongroom sealed key file of version {doc.get('version')!r}; "
                           f"this version reads version {VERSION}")
    _check_fields(doc)
    if (len(_unb64(doc["kdf"]["salt"], "salt")) < 16
            or len(_unb64(doc["nonce"], "nonce")) != 12):
        raise NotSealedKey("not a Strongroom sealed key file (salt or nonce of a wrong size)")
    ciphertext = _unb64(doc.pop("ciphertext"), "ciphertext")
    return doc, ciphertext


def _check_fields(doc: dict[str, Any]) -> None:
    kdf = doc.get("kdf")
    strings = ("purpose", "key_id", "nonce", "ciphertext", "cipher")
    if (not all(isinstance(doc.get(k), str) for k in strings) or not isinstance(kdf, dict)
            or kdf.get("name") != "argon2id" or doc["cipher"] != "AES-256-GCM"
            or not isinstance(kdf.get("salt"), str)):
        raise NotSealedKey("not a Strongroom sealed key file (fields missing or unknown)")
    for name, (low, high) in _LIMITS.items():
        value = kdf.get(name)
        if type(value) is not int or not low <= value <= high:
            raise NotSealedKey(f"the sealed key file's argon2 {name} {value!r} is outside "
                               f"{low}..{high}")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NotSealedKey(f"not a Strongroom sealed key file (its {what} is not "
                           "base64)") from None
