"""providers.sealed: a key sealed under a passphrase opens with it and with nothing else;
a changed file, another purpose and garbage are each one clear error."""
import json
import os

import pytest

from strongroom.appliance.keysource import key_id as appliance_key_id
from strongroom.providers import sealed
from strongroom.providers.errors import StorageError

KEY = bytes(range(32))
CHEAP = sealed.Cost(time_cost=1, memory_kib=8 * 1024, parallelism=1)


def test_round_trip_at_the_product_cost() -> None:
    data = sealed.seal(KEY, "correct horse battery", sealed.RECOVERY)
    header = json.loads(data)
    assert header["kdf"] == {**header["kdf"], "name": "argon2id", "time_cost": 3,
                             "memory_kib": 65536, "parallelism": 1}
    assert header["key_id"] == appliance_key_id(KEY)
    assert KEY.hex() not in data.decode() and "correct horse" not in data.decode()
    assert sealed.open_sealed(data, "correct horse battery", sealed.RECOVERY) == KEY


def test_two_seals_of_one_key_differ() -> None:
    """A fresh salt and nonce each time: two files say nothing about each other."""
    a = sealed.seal(KEY, "passphrase one", sealed.RECOVERY, CHEAP)
    b = sealed.seal(KEY, "passphrase one", sealed.RECOVERY, CHEAP)
    assert json.loads(a)["ciphertext"] != json.loads(b)["ciphertext"]


def test_key_id_is_the_appliances() -> None:
    key = os.urandom(32)
    assert sealed.key_id(key) == appliance_key_id(key)


def test_wrong_passphrase() -> None:
    data = sealed.seal(KEY, "passphrase one", sealed.RECOVERY, CHEAP)
    with pytest.raises(sealed.WrongPassphrase, match="wrong passphrase"):
        sealed.open_sealed(data, "passphrase two", sealed.RECOVERY)


def test_unicode_passphrase_is_normalised() -> None:
    """é typed as one code point or as e + combining accent opens the same file."""
    data = sealed.seal(KEY, "caf\u00e9 au lait!", sealed.RECOVERY, CHEAP)
    assert sealed.open_sealed(data, "cafe\u0301 au lait!", sealed.RECOVERY) == KEY


@pytest.mark.parametrize("field, value", [
    ("key_id", "0000000000000000"),
    ("created_at", "2020-01-01T00:00:00+00:00"),
    ("note", "harmless?"),
    ("extra", "an added field"),
])
def test_a_changed_header_fails_authentication(field: str, value: str) -> None:
    doc = json.loads(sealed.seal(KEY, "passphrase one", sealed.RECOVERY, CHEAP))
    doc[field] = value
    with pytest.raises(sealed.WrongPassphrase):
        sealed.open_sealed(json.dumps(doc).encode(), "passphrase one", sealed.RECOVERY)


def test_a_changed_header_byte_fails_authentication() -> None:
    data = bytearray(sealed.seal(KEY, "passphrase one", sealed.RECOVERY, CHEAP))
    at = data.index(b'"key_id": "') + len(b'"key_id": "')
    data[at] = ord("f") if data[at] != ord("f") else ord("e")
    with pytest.raises(sealed.WrongPassphrase):
        sealed.open_sealed(bytes(data), "passphrase one", sealed.RECOVERY)


def test_a_changed_cost_fails_authentication() -> None:
    doc = json.loads(sealed.seal(KEY, "passphrase one", sealed.RECOVERY, CHEAP))
    doc["kdf"]["time_cost"] = 2
    with pytest.raises(sealed.WrongPassphrase):
        sealed.open_sealed(json.dumps(doc).encode(), "passphrase one", sealed.RECOVERY)


def test_a_changed_ciphertext_fails_authentication() -> None:
    doc = json.loads(sealed.seal(KEY, "passphrase one", sealed.RECOVERY, CHEAP))
    raw = bytearray(__import__("base64").b64decode(doc["ciphertext"]))
    raw[0] ^= 1
    doc["ciphertext"] = __import__("base64").b64encode(bytes(raw)).decode()
    with pytest.raises(sealed.WrongPassphrase):
        sealed.open_sealed(json.dumps(doc).encode(), "passphrase one", sealed.RECOVERY)


def test_wrong_purpose() -> None:
    data = sealed.seal(KEY, "passphrase one", sealed.MASTER_KEY, CHEAP)
    with pytest.raises(sealed.SealedKeyError, match="holds a master key, not a recovery"):
        sealed.open_sealed(data, "passphrase one", sealed.RECOVERY)


def test_a_changed_purpose_is_not_taken() -> None:
    """Rewriting the purpose does not turn a master-key file into a recovery file."""
    doc = json.loads(sealed.seal(KEY, "passphrase one", sealed.MASTER_KEY, CHEAP))
    doc["purpose"] = sealed.RECOVERY
    with pytest.raises(sealed.WrongPassphrase):
        sealed.open_sealed(json.dumps(doc).encode(), "passphrase one", sealed.RECOVERY)


@pytest.mark.parametrize("data", [
    b"", b"\x00" * 32, bytes(range(7, 71)),  # fixed: xdist workers must collect the same ids
    b"\xff\xfe not utf-8", b"[1, 2]", b'"text"',
    b'{"format": "something else"}', b"x" * 100_000,
    b'{"format": "strongroom sealed key", "version": 1}',
])
def test_garbage_is_not_a_sealed_key(data: bytes) -> None:
    with pytest.raises(sealed.NotSealedKey, match="not a Strongroom sealed key file"):
        sealed.open_sealed(data, "passphrase one", sealed.RECOVERY)


def test_a_newer_version_is_named() -> None:
    doc = json.loads(sealed.seal(KEY, "passphrase one", sealed.RECOVERY, CHEAP))
    doc["version"] = 2
    with pytest.raises(sealed.NotSealedKey, match="version 2; this version reads version 1"):
        sealed.open_sealed(json.dumps(doc).encode(), "passphrase one", sealed.RECOVERY)


@pytest.mark.parametrize("name, value", [("memory_kib", 64 * 1024 * 1024),
                                         ("time_cost", 10_000), ("parallelism", 0),
                                         ("memory_kib", "65536")])
def test_an_impossible_cost_is_refused_before_any_work(name: str, value: object) -> None:
    """A hand-made file cannot make the opener spend 64 GiB or hours."""
    doc = json.loads(sealed.seal(KEY, "passphrase one", sealed.RECOVERY, CHEAP))
    doc["kdf"][name] = value
    with pytest.raises(sealed.NotSealedKey, match=f"argon2 {name}"):
        sealed.open_sealed(json.dumps(doc).encode(), "passphrase one", sealed.RECOVERY)


@pytest.mark.parametrize("field", ["nonce", "ciphertext"])
def test_bad_base64_is_not_a_sealed_key(field: str) -> None:
    doc = json.loads(sealed.seal(KEY, "passphrase one", sealed.RECOVERY, CHEAP))
    doc[field] = "not base64 !"
    with pytest.raises(sealed.NotSealedKey, match=field):
        sealed.open_sealed(json.dumps(doc).encode(), "passphrase one", sealed.RECOVERY)


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(sealed.SealedKeyError, match="empty passphrase"):
        sealed.seal(KEY, "", sealed.RECOVERY, CHEAP)
    data = sealed.seal(KEY, "passphrase one", sealed.RECOVERY, CHEAP)
    with pytest.raises(sealed.WrongPassphrase):
        sealed.open_sealed(data, "", sealed.RECOVERY)


@pytest.mark.parametrize("key, purpose", [(b"short", sealed.RECOVERY), (KEY, "other")])
def test_seal_refuses_a_bad_key_or_purpose(key: bytes, purpose: str) -> None:
    with pytest.raises(sealed.SealedKeyError):
        sealed.seal(key, "passphrase one", purpose, CHEAP)


def test_errors_are_storage_errors() -> None:
    """The CLI's group turns StorageError into one line: so these never show a traceback."""
    for cls in (sealed.SealedKeyError, sealed.NotSealedKey, sealed.WrongPassphrase):
        assert issubclass(cls, StorageError)


def test_describe_shows_the_header_not_the_key() -> None:
    data = sealed.seal(KEY, "passphrase one", sealed.RECOVERY, CHEAP)
    header = sealed.describe(data)
    assert header["purpose"] == "recovery" and header["key_id"] == sealed.key_id(KEY)
    assert "ciphertext" not in header
