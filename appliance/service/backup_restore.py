"""Checking and restoring a backup (made by appliance.service.backup).

`verify_backup`: the snapshot's table files match the manifest's digests, every blob
the manifest lists is present with its size; given the master key, every chunk of
every version authenticates too (without it, that is said in the result).

`restore_backup`: builds a NEW data directory (refusing a non-empty one): the config
(ports as in the backup; the database: `database_url`, else SQLite in NEW; key, blob
and anchor paths that lay outside the old data directory are put back at their
defaults inside NEW), the keys (the private ones decrypted with the master key: a key
that does not decrypt them is refused before anything is made), the master key file,
the database (migrated to the backup's revision, its rows loaded in one transaction,
then migrated to the newest), the blobs; then a backup-restore audit event anchors the
chain. Any failure removes what was made (NEW's contents; in a PostgreSQL database, the
tables the restore made).
"""
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import Integer, Table, delete, func, insert, inspect, select, text

from strongroom import config as configmod
from strongroom.appliance.db import Database, default_url
from strongroom.appliance.db.engine import safe_url
from strongroom.appliance.db.migrate import _config as alembic_config
from strongroom.appliance.db.models import Base
from strongroom.appliance.errors import BadRequest, Conflict, CorruptData
from strongroom.appliance.service import backup as bk, backup_manifest
from strongroom.providers.fsutil import write_new_private
from strongroom.providers import crypto
from strongroom.providers.keys import KeyRing, load_master_key
from strongroom.providers.streams import ChunkedReader

Json = dict[str, Any]
# Path options a restore puts inside NEW when the backup's config had them elsewhere.
_PATHS = {"tls": ("cert_file", "key_file"), "ssh": ("host_key_ed25519", "host_key_rsa"),
          "storage": ("master_key_file", "blob_dir"), "audit": ("anchor_file",)}
_READ = 1 << 20


def verify_backup(src: Path, master_key_file: Path | bytes | None = None) -> Json:
    """{"blobs", "blob_bytes", "keyed", "authenticated", "manifest_authenticated",
    "problems": [one line each]}. Without a master key, the table files are checked
    against the manifest's digests and the blobs for presence and size only: an edited
    manifest can pass that, which `manifest_authenticated` False says."""
    src = Path(src).resolve()
    manifest = bk.read_manifest(src)
    keyring = None if master_key_file is None else backup_keyring(
        src, manifest, master_key_file if isinstance(master_key_file, bytes)
        else load_master_key(master_key_file))
    macs = [] if keyring is None else _mac_problems(src, manifest, keyring)
    problems = macs + _plain_problems(src, manifest)
    if keyring is not None and not problems:
        problems += _authenticate(src, manifest, keyring)
    return {"backup": str(src), "created_at": manifest["created_at"],
            "blobs": len(manifest["blobs"]), "blob_bytes": sum(b["size"] for b in
                                                               manifest["blobs"]),
            "keyed": keyring is not None, "authenticated": keyring is not None and not problems,
            "manifest_authenticated": keyring is not None and not macs,
            "problems": problems}


def _mac_problems(src: Path, manifest: Json, keyring: KeyRing) -> list[str]:
    """The manifest's and snapshot files' HMACs; a wrong key said as such."""
    problems = backup_manifest.check(src, manifest, keyring)
    if problems and not _key_matches(src, manifest, keyring):
        return [_wrong_key(src, manifest, keyring)]
    return problems


def _wrong_key(src: Path, manifest: Json, keyring: KeyRing) -> str:
    """The wrong-key line, with both key ids when the backup records its own."""
    said = "the master key does not match this backup"
    if "appliance_keys" not in manifest.get("table_sha256", {}):
        return said
    table = Base.metadata.tables["appliance_keys"]
    ids = [r["key_id"] for r in bk.table_rows(src, manifest, table) if r["name"] == "master"]
    if not ids:
        return said
    return (f"{said}: the key given has id {keyring.current_id}, the backup's keys are "
            f"wrapped by id {ids[0]} (a key from before or after a rotate-master? keep "
            "each backup with the key, or recovery key, it was made under)")


def _plain_problems(src: Path, manifest: Json) -> list[str]:
    """What needs no key: the table files' digests, the blobs' presence and sizes."""
    problems = _table_problems(src, manifest)
    for blob in manifest["blobs"]:
        try:
            size = bk.blob_path(src / "blobs", blob["id"]).stat().st_size
        except FileNotFoundError:
            problems.append(f"blob {blob['id']} is missing")
            continue
        if size != blob["size"]:
            problems.append(f"blob {blob['id']} has {size} bytes, the manifest says "
                            f"{blob['size']}")
    return problems


def _key_matches(src: Path, manifest: Json, keyring: KeyRing) -> bool:
    """Whether the master key opens the backup's sealed TLS key (AES-GCM: a wrong key
    fails there, whatever else was edited)."""
    try:
        sealed = (src / manifest["snapshot"] / "keys" / "tls-key.pem.enc").read_bytes()
        bk.unseal(keyring, "tls-key.pem", sealed)
    except (OSError, BadRequest):
        return False
    return True


def _table_problems(src: Path, manifest: Json) -> list[str]:
    problems = []
    for name, digest in manifest["table_sha256"].items():
        path = src / manifest["snapshot"] / "tables" / f"{name}.jsonl"
        try:
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            problems.append(f"table file {name}.jsonl is missing")
            continue
        if actual != digest:
            problems.append(f"table file {name}.jsonl was changed")
    return problems


def _authenticate(src: Path, manifest: Json, keyring: KeyRing) -> list[str]:
    """Read every version's blob through its keys: each chunk authenticates."""
    by_table = {t.name: t for t in Base.metadata.sorted_tables}
    try:
        keys, current = _client_keys(bk.table_rows(src, manifest, by_table["clients"]), keyring)
    except CorruptData:
        return [_wrong_key(src, manifest, keyring)]
    node_client = {r["id"]: r["client_id"] for r in bk.table_rows(src, manifest,
                                                                  by_table["nodes"])}
    problems = []
    for v in bk.table_rows(src, manifest, by_table["versions"]):
        client_key = keys.get(v.get("client_key_id") or current[node_client[v["node_id"]]])
        if client_key is None:
            problems.append(f"version {v['id']} names client key {v.get('client_key_id')}, "
                            "which its client does not have")
            continue
        try:
            key = crypto.unwrap_key(client_key, v["wrapped_key"])
            reader = ChunkedReader(bk.blob_path(src / "blobs", v["blob_id"]), key,
                                   v["size"], v["holes"])
            try:
                for offset in range(0, v["size"], _READ):
                    reader.read(offset, min(_READ, v["size"] - offset))
            finally:
                reader.close()
        except (CorruptData, OSError) as e:
            problems.append(f"blob {v['blob_id']} (version {v['id']}) does not "
                            f"authenticate: {e}")
    return problems


def _client_keys(clients: Iterator[Json], keyring: KeyRing
                 ) -> tuple[dict[str, bytes], dict[int, str]]:
    """({client key id: client key}, {client id: its current key id}) of the backup's
    client rows (a backup from before key ids: the id is the client's own id)."""
    keys, current = {}, {}
    for r in clients:
        kid = r.get("key_id") or f"client {r['id']}"
        current[r["id"]] = kid
        keys[kid] = keyring.unwrap(r.get("master_key_id"), r["wrapped_key"])
        if r.get("next_key_id") and r.get("next_wrapped_key"):
            keys[r["next_key_id"]] = keyring.unwrap(r.get("master_key_id"),
                                                    r["next_wrapped_key"])
    return keys, current


def backup_keyring(src: Path, manifest: Json, master: bytes) -> KeyRing:
    """A KeyRing for the backup's rows: `master`, the next master key of a rotation
    the backup caught in progress, and the derive base of the appliance (derived keys
    come from it, appliance.service.keys_store); a backup from before key ids has
    none, and its derived keys came from the master key."""
    keyring = KeyRing(master)
    if "appliance_keys" not in manifest.get("table_sha256", {}):
        return keyring
    table = Base.metadata.tables["appliance_keys"]
    rows = {r["name"]: r for r in bk.table_rows(src, manifest, table)}
    nxt = rows.get("master-next")
    try:
        if nxt is not None and keyring.holds(nxt["master_key_id"]):
            keyring.add_master(keyring.unwrap(nxt["master_key_id"], nxt["wrapped"]),
                               nxt["key_id"])
        if "derive" in rows and keyring.holds(rows["derive"]["master_key_id"]):
            keyring.set_derive_base(keyring.unwrap(rows["derive"]["master_key_id"],
                                                   rows["derive"]["wrapped"]))
    except CorruptData:
        pass        # a wrong key: what it opens (nothing) says so, with one line
    return keyring


def restore_backup(src: Path, new: Path, master_key: Path | bytes,
                   database_url: str | None = None, actor: str = "admin") -> Json:
    """Build the data directory `new` from the backup in `src`; see the module.
    `master_key`: the key, or the file holding it."""
    src, new = Path(src).resolve(), Path(new).resolve()
    manifest = bk.read_manifest(src)
    key = master_key if isinstance(master_key, bytes) else load_master_key(master_key)
    keyring = backup_keyring(src, manifest, key)
    if not _key_matches(src, manifest, keyring):
        raise BadRequest(_wrong_key(src, manifest, keyring))
    snap = src / manifest["snapshot"]
    private = {}
    for name, _path, is_private in bk.key_files(configmod.load(src, snap / "config" /
                                                               "strongroom.toml")):
        if is_private:
            private[name] = bk.unseal(keyring, name, (snap / "keys" / f"{name}.enc")
                                      .read_bytes())
    _refuse_unsound(src, manifest, keyring)
    if new.exists() and any(new.iterdir()):
        raise Conflict(f"{new} is not empty: restore builds a new data directory")
    made_dir = not new.exists()
    db: Database | None = None
    ours = False        # whether the database's tables are this restore's to drop
    try:
        new.mkdir(parents=True, exist_ok=True, mode=0o700)
        was = str(configmod.load(src, snap / "config" / "strongroom.toml")
                  .get("keys", "master_key_source") or "")
        cfg = _write_config(snap, new, database_url)
        _write_keys(cfg, snap, private, key)
        db = Database(cfg.database.url or default_url(new))
        if inspect(db.engine).get_table_names():
            raise Conflict(f"the database {safe_url(db.url)} is not empty: restore loads "
                           "into a new database only")
        ours = True
        _load_database(db, src, manifest)
        blobs = _copy_blobs(src, manifest, Path(cfg.storage.blob_dir))
        db.dispose()
        _audit_restore(new, src, actor)
    except BaseException as e:
        if db is not None and ours and not db.url.startswith("sqlite"):
            _drop_all(db)
        if db is not None:
            db.dispose()
        _remove(new, made_dir)
        if isinstance(e, OSError):
            raise BadRequest(f"cannot restore into {new}: {e.strerror or e} "
                             f"({e.filename}); nothing was left behind") from None
        raise
    return {"data_dir": str(new), "from": str(src), "revision": manifest["revision"],
            "rows": manifest["rows"], "blobs": blobs, "database": "sqlite" if not
            database_url else "postgresql", "key_source_was": was or None}


def _refuse_unsound(src: Path, manifest: Json, keyring: KeyRing) -> None:
    """CorruptData, one line, unless the backup verifies with the key (HMACs, tables,
    blobs present with their sizes, every chunk): a restore never builds an appliance
    from an edited backup, nor one whose files would not read back."""
    problems = (_mac_problems(src, manifest, keyring) + _plain_problems(src, manifest)
                or _authenticate(src, manifest, keyring))
    if problems:
        more = (f" (and {len(problems) - 1} more: `strongroom backup verify` names them "
                "all)" if len(problems) > 1 else "")
        raise CorruptData(f"the backup in {src} does not verify: {problems[0]}{more}; "
                          "nothing was restored")


def _write_config(snap: Path, new: Path, database_url: str | None) -> Any:
    shutil.copyfile(snap / "config" / "strongroom.toml", new / "strongroom.toml")
    os.chmod(new / "strongroom.toml", 0o600)
    configmod.set_options(new, "database", {"url": database_url or ""})
    cfg = configmod.load(new)
    # The key goes into NEW, never to a path, credential or passphrase of the backup's
    # machine (restoring beside a live appliance must not touch its key).
    if cfg.get("keys", "master_key_source"):
        configmod.set_options(new, "keys", {"master_key_source": ""})
        cfg = configmod.load(new)
    for section, names in _PATHS.items():
        outside: dict[str, object] = {n: configmod.SCHEMA[section][n].default for n in names
                   if not Path(getattr(getattr(cfg, section), n)).resolve()
                   .is_relative_to(new)}
        if outside:
            configmod.set_options(new, section, outside)
    return configmod.load(new)


def _write_keys(cfg: Any, snap: Path, private: dict[str, bytes], master: bytes) -> None:
    for name, path, is_private in bk.key_files(cfg):
        data = private[name] if is_private else (snap / "keys" / name).read_bytes()
        _write_file(Path(path), data)
    _write_file(Path(cfg.storage.master_key_file), master)


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_new_private(path, data)


def _load_database(db: Database, src: Path, manifest: Json) -> None:
    """Migrate the (empty) database to the backup's revision, load every row in one
    transaction, migrate on."""
    command.upgrade(alembic_config(db.engine), manifest["revision"])
    with db.write() as s:
        for table in reversed(bk.tables()):
            s.execute(delete(table))            # what the migrations seeded
        for table in bk.tables():
            if table.name not in manifest["rows"]:
                continue            # added after the backup's revision: nothing to load
            rows = _parents_first(table, list(bk.table_rows(src, manifest, table)))
            for i in range(0, len(rows), 500):
                if rows[i:i + 500]:
                    s.execute(insert(table), rows[i:i + 500])
        if not db.url.startswith("sqlite"):
            _reset_sequences(s, bk.tables())
    command.upgrade(alembic_config(db.engine), "head")


def _parents_first(table: Table, rows: list[Json]) -> list[Json]:
    """Rows of a table with a foreign key to itself (nodes.parent_id) in an order where
    each row's parent comes before it (a moved item can be older than its folder)."""
    own = [fk.parent.name for fk in table.foreign_keys if fk.column.table is table]
    if not own:
        return rows
    col, key = own[0], list(table.primary_key.columns)[0].name
    ids = {r[key] for r in rows}
    done: set[Any] = set()
    ordered: list[Json] = []
    pending = rows
    while pending:
        ready = [r for r in pending if r[col] is None or r[col] not in ids or r[col] in done]
        if not ready:
            raise CorruptData(f"the backup's {table.name} has a cycle of parents")
        ordered += ready
        done.update(r[key] for r in ready)
        pending = [r for r in pending if r[key] not in done]
    return ordered


def _reset_sequences(s: Any, tables: list[Table]) -> None:
    """PostgreSQL: each serial id continues after the highest restored one."""
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, Integer):
            continue
        seq = s.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"),
                       {"t": table.name, "c": pk[0].name})
        top = s.scalar(select(func.max(pk[0])))
        if seq and top is not None:
            s.execute(text("SELECT setval(:s, :v)"), {"s": seq, "v": top})


def _copy_blobs(src: Path, manifest: Json, blob_dir: Path) -> int:
    blob_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for blob in manifest["blobs"]:
        source = bk.blob_path(src / "blobs", blob["id"])
        if not source.exists():
            raise BadRequest(f"the backup is incomplete: blob {blob['id']} is missing "
                             "(`strongroom backup verify` names every problem)")
        bk.copy_file(source, bk.blob_path(blob_dir, blob["id"]))
    return len(manifest["blobs"])


def _drop_all(db: Database) -> None:
    with db.engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


def _remove(new: Path, made_dir: bool) -> None:
    if made_dir:
        shutil.rmtree(new, ignore_errors=True)
        return
    for child in new.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _audit_restore(new: Path, src: Path, actor: str) -> None:
    """Open the restored appliance once: a backup-restore event, and the chain anchored."""
    from strongroom.appliance.app import App
    app = App(new)
    try:
        with app.db.write() as s:
            app.audit.append(s, actor=actor, protocol="cli", address=None,
                             action="backup-restore", path=None, detail=f"from={src}")
    finally:
        app.close()
