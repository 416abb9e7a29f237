"""Backups of a serving appliance: `create_backup` and `verify_backup` (restoring one:
appliance.service.backup_restore).

A backup is a plain directory (for restic or borg to take off-site):

    DEST/manifest.json          what the backup holds; written last (the commit point)
    DEST/snapshots/<id>/tables/<table>.jsonl   one row a line, columns by name, bytes base64
    DEST/snapshots/<id>/config/strongroom.toml
    DEST/snapshots/<id>/keys/   TLS certificate, SSH host public keys, and the private
                                keys (*.enc) AES-GCM-encrypted under a key derived from
                                the master key (HKDF, purpose "backup private keys")
    DEST/blobs/ab/<id>          the encrypted blobs, as the appliance stores them

The metadata is one instant of the database: every table is read in ONE read
transaction (SQLite's WAL snapshot; PostgreSQL at REPEATABLE READ), so the format is
the same from either database. The blobs its versions name are copied after it.
Retention cannot delete a blob under the copy: the backup holds the maintenance lease
(appliance.service.maintenance_lease) from before the snapshot until the copy ends.
Other deletions (a trash emptied, a client removed, editor litter replaced) do not take
that lease: a blob that is gone when it is copied and whose version is gone from the
database too was deleted after the snapshot, so the backup takes a new snapshot and
copies again (only what is missing), at most `_TRIES` times; a blob missing while its
version still exists is an appliance fault, named in the error.

Blobs never change once written, so a blob already in DEST (same name and size) is not
copied again; each is copied to a temporary name, fsynced, then renamed. The manifest
replaces the previous one atomically; older snapshot folders, and blobs the new manifest
does not list, are removed after it. The master key is never in a backup. The manifest
and every snapshot file carry an HMAC under a key of the master key
(appliance.service.backup_manifest), so an edited backup is detected by whoever has it.
"""
import base64
import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import LargeBinary, Table, select, text
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.app import App
from strongroom.appliance.db.models import Base, Version
from strongroom.appliance.errors import BadRequest, Conflict, CorruptData, NoSpace
from strongroom.appliance.service import backup_manifest
from strongroom.appliance.service.maintenance_lease import Lease, LeaseTaken
from strongroom.providers.keys import KeyRing
from strongroom.providers.fsutil import fsync_dir

Json = dict[str, Any]
FORMAT = "strongroom-backup-1"
MANIFEST = "manifest.json"
NO_MASTER_KEY = "the master key is not in the backup: keep it apart"
KEY_PURPOSE = "backup private keys"
# Not backed up: who runs maintenance now means nothing on another appliance.
SKIPPED_TABLES = frozenset({"maintenance_leases"})
_TRIES = 3
_LEASE_WAIT = 30.0


def tables() -> list[Table]:
    """The tables a backup holds, parents before children (foreign keys)."""
    return [t for t in Base.metadata.sorted_tables if t.name not in SKIPPED_TABLES]


def key_files(app_config: Any) -> list[tuple[str, str, bool]]:
    """(name in the backup, path, private) of the TLS and SSH key material."""
    tls, ssh = app_config.tls, app_config.ssh
    return [("tls-cert.pem", tls.cert_file, False), ("tls-key.pem", tls.key_file, True),
            ("ssh_host_ed25519_key", ssh.host_key_ed25519, True),
            ("ssh_host_ed25519_key.pub", f"{ssh.host_key_ed25519}.pub", False),
            ("ssh_host_rsa_key", ssh.host_key_rsa, True),
            ("ssh_host_rsa_key.pub", f"{ssh.host_key_rsa}.pub", False)]


def seal(keyring: KeyRing, name: str, data: bytes) -> bytes:
    """A private key file encrypted for the backup: nonce | AES-GCM(data, aad=name)."""
    nonce = os.urandom(12)
    return nonce + AESGCM(keyring.derive(KEY_PURPOSE)).encrypt(nonce, data, name.encode())


def unseal(keyring: KeyRing, name: str, sealed: bytes) -> bytes:
    """The inverse of `seal`; BadRequest if the master key is not the backup's."""
    try:
        return AESGCM(keyring.derive(KEY_PURPOSE)).decrypt(sealed[:12], sealed[12:],
                                                            name.encode())
    except (InvalidTag, ValueError):
        raise BadRequest("the master key does not match this backup") from None


def blob_path(root: Path, blob_id: str) -> Path:
    if len(blob_id) != 32 or not all(c in "0123456789abcdef" for c in blob_id):
        raise CorruptData(f"bad blob id {blob_id!r} in the backup")
    return root / blob_id[:2] / blob_id


def create_backup(app: App, dest: Path) -> Json:
    """Back up the appliance of `app` into the directory `dest` (made if missing; an
    earlier backup there is updated incrementally). Returns the summary the CLI prints;
    audited (backup-create)."""
    dest = Path(dest).resolve()
    _prepare(dest)
    with _only_backup(dest):
        lease = _take_lease(app)
        try:
            summary = _snapshot_and_copy(app, dest, lease)
        finally:
            lease.release()
    with app.db.write() as s:
        app.audit.append(s, actor=app.admin_name, protocol="cli", address=None,
                         action="backup-create", path=None,
                         detail=f"to={dest} blobs={summary['blobs']} "
                                f"copied={summary['copied']}")
    summary["note"] = NO_MASTER_KEY
    return summary


def _prepare(dest: Path) -> None:
    """DEST usable: a directory we can write, empty or an earlier backup."""
    try:
        dest.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = dest / f".probe-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise BadRequest(f"cannot write the backup to {dest}: {e.strerror or e}") from None
    ours = {MANIFEST, f"{MANIFEST}.tmp", ".lock", "snapshots", "blobs"}
    if not (dest / MANIFEST).exists() and any(p.name not in ours for p in dest.iterdir()):
        raise Conflict(f"{dest} is neither empty nor a Strongroom backup: choose another place")


@contextlib.contextmanager
def _only_backup(dest: Path) -> Iterator[None]:
    """One backup into DEST at a time (a second one would prune the first's blobs)."""
    fd = os.open(dest / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(f"another backup into {dest} is running; try later") from None
        yield
    finally:
        os.close(fd)


def _take_lease(app: App) -> Lease:
    """The maintenance lease, waiting up to _LEASE_WAIT for a run to end."""
    lease = Lease(app.db)
    deadline = time.monotonic() + _LEASE_WAIT
    while True:
        try:
            lease.take()
            return lease
        except LeaseTaken:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _snapshot_and_copy(app: App, dest: Path, lease: Lease) -> Json:
    copied = 0
    for attempt in range(1, _TRIES + 1):
        snap_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"
        snap = dest / "snapshots" / snap_id
        try:
            meta = _write_snapshot(app, snap)
            c, vanished = _copy_blobs(app, dest, meta["blobs"], lease)
        except OSError as e:
            shutil.rmtree(snap, ignore_errors=True)
            raise write_error(Path(e.filename or snap / "x"), e) from None
        except BaseException:
            shutil.rmtree(snap, ignore_errors=True)
            raise
        copied += c
        if not vanished:
            break
        shutil.rmtree(snap, ignore_errors=True)
        if attempt == _TRIES:
            raise Conflict(f"{len(vanished)} blobs were deleted while they were being "
                           f"backed up, {_TRIES} times in a row (e.g. {vanished[0]}): "
                           "try again when fewer files are being deleted")
    manifest = backup_manifest.sign(_manifest(snap_id, meta), snap, app.keyring)
    _write_atomic(dest / MANIFEST, json.dumps(manifest, indent=1).encode())
    for old in (dest / "snapshots").iterdir():
        if old.name != snap_id:
            shutil.rmtree(old, ignore_errors=True)
    pruned = _prune(dest / "blobs", {b["id"] for b in meta["blobs"]})
    total = sum(b["size"] for b in meta["blobs"])
    return {"dest": str(dest), "snapshot": snap_id, "revision": meta["revision"],
            "rows": meta["rows"], "blobs": len(meta["blobs"]), "copied": copied,
            "already_present": max(0, len(meta["blobs"]) - copied),
            "blob_bytes": total, "pruned": pruned, "tries": attempt}


def _prune(root: Path, keep: set[str]) -> int:
    """Remove the blobs (and .part files of a killed backup) the new manifest does not
    list: the previous snapshot is gone, so nothing names them (an off-site copy by
    restic or borg keeps the history). Returns how many blobs went."""
    pruned = 0
    for sub in root.iterdir() if root.is_dir() else ():
        for f in sub.iterdir() if sub.is_dir() else ():
            if f.name not in keep:
                f.unlink(missing_ok=True)
                pruned += not f.name.endswith(".part")
    return pruned


def _write_snapshot(app: App, snap: Path) -> Json:
    """Tables (one read transaction), config and keys into `snap`."""
    (snap / "tables").mkdir(parents=True, mode=0o700)
    rows: dict[str, int] = {}
    digests: dict[str, str] = {}
    blobs: dict[str, int] = {}
    with app.db.read() as s:
        if not app.db.url.startswith("sqlite"):
            s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        revision = s.scalar(text("SELECT version_num FROM alembic_version"))
        for table in tables():
            path = snap / "tables" / f"{table.name}.jsonl"
            rows[table.name], digests[table.name] = _dump_table(s, table, path)
        for blob_id, size in s.execute(select(Version.blob_id, Version.size)):
            blobs[blob_id] = size
    _copy_config_and_keys(app, snap)
    return {"revision": revision, "rows": rows, "table_sha256": digests,
            "blobs": [{"id": b} for b in sorted(blobs)]}


def _dump_table(s: OrmSession, table: Table, path: Path) -> tuple[int, str]:
    binary = [c.name for c in table.columns if isinstance(c.type, LargeBinary)]
    sha, count = hashlib.sha256(), 0
    with open(path, "wb") as out:
        for row in s.execute(select(table).order_by(*table.primary_key.columns)).mappings():
            record = dict(row)
            for name in binary:
                if record[name] is not None:
                    record[name] = base64.b64encode(record[name]).decode("ascii")
            line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
            out.write(line)
            sha.update(line)
            count += 1
        out.flush()
        os.fsync(out.fileno())
    return count, sha.hexdigest()


def _copy_config_and_keys(app: App, snap: Path) -> None:
    (snap / "config").mkdir(mode=0o700)
    shutil.copyfile(app.data_dir / "strongroom.toml", snap / "config" / "strongroom.toml")
    (snap / "keys").mkdir(mode=0o700)
    for name, path, private in key_files(app.config):
        data = Path(path).read_bytes()
        if private:
            (snap / "keys" / f"{name}.enc").write_bytes(seal(app.keyring, name, data))
        else:
            (snap / "keys" / name).write_bytes(data)


def _copy_blobs(app: App, dest: Path, blobs: list[Json],
                lease: Lease) -> tuple[int, list[str]]:
    """Copy each blob not in DEST yet (sizes filled in); (copied, vanished)."""
    copied = 0
    vanished: list[str] = []
    src_root = Path(app.config.storage.blob_dir)
    for blob in blobs:
        lease.renew()
        src, dst = src_root / blob["id"][:2] / blob["id"], blob_path(dest / "blobs", blob["id"])
        try:
            blob["size"] = src.stat().st_size
        except FileNotFoundError:
            if _still_named(app, blob["id"]):
                raise CorruptData(f"blob {blob['id']} is missing on the appliance although "
                                  "a version names it: run `strongroom doctor`") from None
            vanished.append(blob["id"])
            continue
        if dst.exists() and dst.stat().st_size == blob["size"]:
            continue
        copy_file(src, dst)
        copied += 1
    return copied, vanished


def _still_named(app: App, blob_id: str) -> bool:
    with app.db.read() as s:
        return s.scalar(select(Version.id).where(Version.blob_id == blob_id).limit(1)) \
            is not None


def copy_file(src: Path, dst: Path) -> None:
    """Copy to DST.part, fsync, rename: DST is whole or absent. Holes stay holes."""
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    part = dst.with_name(dst.name + ".part")
    try:
        with open(src, "rb") as fin, open(part, "wb") as fout:
            _copy_sparse(fin.fileno(), fout.fileno(), os.fstat(fin.fileno()).st_size)
            os.fsync(fout.fileno())
        os.replace(part, dst)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise write_error(dst, e) from None


def _copy_sparse(fin: int, fout: int, size: int) -> None:
    """The data segments of `fin` into `fout` at their offsets (a blob with holes,
    providers.crypto, keeps them)."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fin, offset, os.SEEK_DATA)
        except OSError:          # ENXIO: only a hole is left
            break
        end = os.lseek(fin, start, os.SEEK_HOLE)
        while start < end:
            data = os.pread(fin, min(1 << 20, end - start), start)
            if not data:
                break
            written = 0
            while written < len(data):
                written += os.pwrite(fout, data[written:], start + written)
            start += len(data)
        offset = end
    os.ftruncate(fout, size)


def write_error(path: Path, e: OSError) -> Exception:
    """One line for an OSError writing the backup at `path`."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpace(f"no space left for the backup in {path.parent}")
    return BadRequest(f"cannot write {path}: {e.strerror or e}")


def _manifest(snap_id: str, meta: Json) -> Json:
    return {"format": FORMAT, "created_at": datetime.datetime.now(datetime.timezone.utc)
            .isoformat(timespec="seconds"), "snapshot": f"snapshots/{snap_id}",
            "revision": meta["revision"], "rows": meta["rows"],
            "table_sha256": meta["table_sha256"], "blobs": meta["blobs"],
            "master_key": "not included"}


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_manifest(src: Path) -> Json:
    """The manifest of the backup in `src`; BadRequest if `src` is not a backup."""
    try:
        manifest = json.loads((Path(src) / MANIFEST).read_text("utf-8"))
    except FileNotFoundError:
        raise BadRequest(f"{src} is not a Strongroom backup (no {MANIFEST})") from None
    except (OSError, ValueError) as e:
        raise BadRequest(f"{src}/{MANIFEST} cannot be read: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadRequest(f"{src} is not a Strongroom backup ({MANIFEST} is not {FORMAT})")
    return manifest


def table_rows(src: Path, manifest: Json, table: Table) -> Iterator[Json]:
    """The rows of `table` in the backup, bytes decoded."""
    path = Path(src) / manifest["snapshot"] / "tables" / f"{table.name}.jsonl"
    binary = [c.name for c in table.columns if isinstance(c.type, LargeBinary)]
    with open(path, "rb") as f:
        for line in f:
            record: Json = json.loads(line)
            for name in binary:
                if record.get(name) is not None:
                    record[name] = base64.b64decode(record[name])
            yield record
