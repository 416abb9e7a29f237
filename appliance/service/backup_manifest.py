"""The authentication of a backup's manifest and snapshot files (appliance.service.backup).

A backup lies on storage the appliance does not control (a NAS, restic's repository), so
its plain parts can be edited: the manifest (a blob's size, the blob list) and the
snapshot's files (a table's rows, the config, the public keys). Each is authenticated
with HMAC-SHA256 under a key derived from the master key (purpose "backup manifest"):

    manifest["file_hmac"][<path in the snapshot>] = HMAC(path NUL content)
    manifest["hmac"] = HMAC(the manifest without "hmac", canonical JSON)

The path is inside the MAC, so a table file cannot be swapped for another; the manifest's
MAC covers `file_hmac`, the blob list and sizes. The private keys (*.enc) are AES-GCM
sealed already, and blobs authenticate chunk by chunk; both are MACed as well, which
costs nothing and leaves no file of the snapshot unnamed. Without the master key nothing
here can be checked, and `verify_backup` says so.
"""
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from strongroom.providers.keys import KeyRing

Json = dict[str, Any]
PURPOSE = "backup manifest"
_READ = 1 << 20


def _key(keyring: KeyRing) -> bytes:
    return keyring.derive(PURPOSE)


def file_mac(key: bytes, rel: str, path: Path) -> str:
    """HMAC-SHA256 of `rel` NUL and the content of `path`, hex."""
    mac = hmac.new(key, rel.encode() + b"\0", hashlib.sha256)
    with open(path, "rb") as f:
        while chunk := f.read(_READ):
            mac.update(chunk)
    return mac.hexdigest()


def _canonical(manifest: Json) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "hmac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(manifest: Json, snap: Path, keyring: KeyRing) -> Json:
    """`manifest` with `file_hmac` (every file of the snapshot folder `snap`) and `hmac`."""
    key = _key(keyring)
    files = sorted(p for p in snap.rglob("*") if p.is_file())
    signed = dict(manifest, file_hmac={
        p.relative_to(snap).as_posix(): file_mac(key, p.relative_to(snap).as_posix(), p)
        for p in files})
    signed["hmac"] = hmac.new(key, _canonical(signed), hashlib.sha256).hexdigest()
    return signed


def check(src: Path, manifest: Json, keyring: KeyRing) -> list[str]:
    """Problems (one line each) authenticating the manifest of the backup in `src` and
    every snapshot file it names; [] when all authenticate."""
    key = _key(keyring)
    given = manifest.get("hmac")
    if not isinstance(given, str) or not isinstance(manifest.get("file_hmac"), dict):
        return ["the manifest carries no HMAC: it cannot be authenticated (was it edited?)"]
    expected = hmac.new(key, _canonical(manifest), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given, expected):
        return ["the manifest does not authenticate: it was changed (or the master key "
                "is not this backup's)"]
    return _file_problems(Path(src) / manifest["snapshot"], manifest["file_hmac"], key)


def _file_problems(snap: Path, macs: dict[str, str], key: bytes) -> list[str]:
    problems = []
    for rel, mac in sorted(macs.items()):
        try:
            actual = file_mac(key, rel, snap / rel)
        except OSError:
            problems.append(f"snapshot file {rel} is missing")
            continue
        if not hmac.compare_digest(actual, mac):
            problems.append(f"snapshot file {rel} does not authenticate: it was changed")
    return problems
