"""Backups at the service level (appliance.service.backup, backup_restore), on SQLite
and PostgreSQL: a backup restored into a new data directory has the same rows (tree,
versions, trash) and every version's bytes; a second backup copies only new blobs;
a SQLite backup restores into PostgreSQL; a wrong master key, a non-empty target, a
folder that is no backup are refused with nothing made; verify names a changed or
missing blob."""
import os

import pytest
from sqlalchemy import select

from strongroom.appliance.app import App
from strongroom.appliance.db.models import Client, Node, User, Version
from strongroom.appliance.errors import BadRequest, Conflict, CorruptData
from strongroom.appliance.service.backup import NO_MASTER_KEY, create_backup
from strongroom.appliance.service.backup_restore import restore_backup, verify_backup
from strongroom.providers.keys import create_master_key
from tests.support.postgres import fresh_database
from tests.support.sessions import client_session, put


@pytest.fixture
def acme(app):
    session = client_session(app, "acme")
    put(session, "/early.txt", b"made before its folder")
    session.mkdir("/docs")
    session.rename("/early.txt", "/docs/early.txt")     # a child older than its folder
    put(session, "/docs/report.pdf", b"first")
    put(session, "/docs/report.pdf", b"second version")
    put(session, "/big.bin", os.urandom(700_000))       # a few chunks
    put(session, "/gone.txt", b"in the trash")
    session.remove("/gone.txt")
    return session


def version_bytes(app) -> dict[int, bytes]:
    """Every version's plaintext, by version id, read through the app's keys."""
    out = {}
    with app.db.read() as s:
        rows = s.execute(select(Version, Client.wrapped_key).join(Node, Node.id == Version.node_id)
                         .join(Client, Client.id == Node.client_id)).all()
    for v, client_key in rows:
        reader = app.provider.open_blob(v.blob_id, app.keyring.data_key(client_key, v.wrapped_key),
                                        v.size, v.holes)
        try:
            out[v.id] = reader.read(0, v.size)
        finally:
            reader.close()
    return out


def rows(app) -> dict[str, list[tuple]]:
    with app.db.read() as s:
        return {model.__tablename__: sorted(
            tuple(getattr(r, c.key) for c in model.__table__.columns)
            for r in s.scalars(select(model)))
            for model in (Client, User, Node, Version)}


def restored(path):
    app = App(path)
    try:
        return rows(app), version_bytes(app), app.admin().verify_audit()
    finally:
        app.close()


def test_restore_gives_the_same_rows_and_every_versions_bytes(app, acme, tmp_path):
    summary = create_backup(app, tmp_path / "bk")
    assert summary["note"] == NO_MASTER_KEY and summary["copied"] == summary["blobs"] == 5
    assert not list((tmp_path / "bk").rglob("master.key"))
    assert verify_backup(tmp_path / "bk", app.data_dir / "master.key")["problems"] == []
    restore_backup(tmp_path / "bk", tmp_path / "new", app.data_dir / "master.key")
    got_rows, got_bytes, verdict = restored(tmp_path / "new")
    assert got_rows == rows(app)
    assert got_bytes == version_bytes(app) and len(got_bytes) == 5
    assert verdict.problem is None, verdict
    for name in ("tls/cert.pem", "tls/key.pem", "ssh/ssh_host_ed25519_key"):
        assert (tmp_path / "new" / name).read_bytes() == (app.data_dir / name).read_bytes()


def test_a_second_backup_copies_only_new_blobs(app, acme, tmp_path):
    assert create_backup(app, tmp_path / "bk")["copied"] == 5
    again = create_backup(app, tmp_path / "bk")
    assert (again["copied"], again["already_present"]) == (0, 5)
    put(acme, "/new.txt", b"one more")
    third = create_backup(app, tmp_path / "bk")
    assert (third["copied"], third["blobs"]) == (1, 6)
    assert len(list((tmp_path / "bk" / "snapshots").iterdir())) == 1
    stale = tmp_path / "bk" / "blobs" / "ab" / ("ab" + "0" * 30)   # named by no version
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"old")
    (tmp_path / "bk" / "blobs" / "ab" / "left.part").write_bytes(b"half")
    assert create_backup(app, tmp_path / "bk")["pruned"] == 1
    assert not stale.exists() and not list((tmp_path / "bk").rglob("*.part"))


def test_a_sqlite_backup_restores_into_postgresql(app, acme, tmp_path):
    if app.db.url.startswith("postgresql"):
        pytest.skip("the SQLite case covers it")
    create_backup(app, tmp_path / "bk")
    with fresh_database() as url:
        restore_backup(tmp_path / "bk", tmp_path / "new", app.data_dir / "master.key",
                       database_url=url)
        got_rows, got_bytes, verdict = restored(tmp_path / "new")
        assert got_rows == rows(app) and got_bytes == version_bytes(app)
        assert verdict.problem is None
        # the ids continue after the restored ones
        new_app = App(tmp_path / "new")
        try:
            session = client_session(new_app, "later")
            put(session, "/x.txt", b"after the restore")
        finally:
            new_app.close()


def test_a_wrong_master_key_is_refused_and_nothing_made(app, acme, tmp_path):
    create_backup(app, tmp_path / "bk")
    create_master_key(tmp_path / "other.key")
    with pytest.raises(BadRequest, match="^the master key does not match this backup: the key given has id "):
        restore_backup(tmp_path / "bk", tmp_path / "new", tmp_path / "other.key")
    assert not (tmp_path / "new").exists()


def test_bad_targets_and_sources_are_refused(app, acme, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    create_backup(app, tmp_path / "bk")
    with pytest.raises(Conflict, match="not empty"):
        restore_backup(tmp_path / "bk", tmp_path / "full", app.data_dir / "master.key")
    assert os.listdir(tmp_path / "full") == ["x"]
    with pytest.raises(BadRequest, match="is not a Strongroom backup"):
        restore_backup(tmp_path / "full", tmp_path / "new", app.data_dir / "master.key")
    with pytest.raises(Conflict, match="neither empty nor a Strongroom backup"):
        create_backup(app, tmp_path / "full")
    (tmp_path / "killed").mkdir()           # what a backup killed at its start leaves
    (tmp_path / "killed" / ".lock").write_bytes(b"")
    (tmp_path / "killed" / "snapshots").mkdir()
    assert create_backup(app, tmp_path / "killed")["copied"] == 5


def test_verify_names_a_changed_and_a_missing_blob(app, acme, tmp_path):
    create_backup(app, tmp_path / "bk")
    blobs = sorted((p for p in (tmp_path / "bk" / "blobs").rglob("*") if p.is_file()),
                   key=lambda p: -p.stat().st_size)
    data = bytearray(blobs[0].read_bytes())
    data[-20] ^= 1
    blobs[0].write_bytes(bytes(data))
    assert verify_backup(tmp_path / "bk")["problems"] == []        # sizes only
    problems = verify_backup(tmp_path / "bk", app.data_dir / "master.key")["problems"]
    assert len(problems) == 1 and blobs[0].name in problems[0] and "authenticate" in problems[0]
    blobs[1].unlink()
    assert verify_backup(tmp_path / "bk")["problems"] == [f"blob {blobs[1].name} is missing"]


def test_a_sparse_file_stays_sparse_in_the_backup_and_reads_back(app, tmp_path):
    session = client_session(app, "acme")
    upload = session.open_write("/sparse.img")
    try:
        upload.write(0, b"head")
        upload.write(64 * 1024 * 1024, b"tail")      # 64 MiB of hole between
        upload.commit()
    finally:
        upload.abort()
    create_backup(app, tmp_path / "bk")
    (blob,) = [p for p in (tmp_path / "bk" / "blobs").rglob("*") if p.is_file()]
    assert blob.stat().st_size > 64 * 1024 * 1024 and blob.stat().st_blocks * 512 < 4 * 1024 * 1024
    restore_backup(tmp_path / "bk", tmp_path / "new", app.data_dir / "master.key")
    got_rows, got_bytes, _verdict = restored(tmp_path / "new")
    assert got_bytes == version_bytes(app)


def test_a_non_empty_database_is_refused_and_left_alone(app, acme, tmp_path):
    if not app.db.url.startswith("postgresql"):
        pytest.skip("a PostgreSQL database given by URL")
    create_backup(app, tmp_path / "bk")
    before = rows(app)
    with pytest.raises(Conflict, match="is not empty: restore loads into a new database only"):
        restore_backup(tmp_path / "bk", tmp_path / "new", app.data_dir / "master.key",
                       database_url=app.db.url)
    assert not (tmp_path / "new").exists() and rows(app) == before


def test_a_blob_missing_on_the_appliance_is_named_and_no_manifest_made(app, acme, tmp_path):
    with app.db.read() as s:
        blob_id = s.scalars(select(Version.blob_id)).first()
    (app.provider.root / blob_id[:2] / blob_id).unlink()
    with pytest.raises(CorruptData, match=f"blob {blob_id} is missing on the appliance"):
        create_backup(app, tmp_path / "bk")
    assert not (tmp_path / "bk" / "manifest.json").exists()
    assert list((tmp_path / "bk" / "snapshots").iterdir()) == []


def test_one_backup_into_a_folder_at_a_time(app, acme, tmp_path):
    import fcntl
    create_backup(app, tmp_path / "bk")
    with open(tmp_path / "bk" / ".lock", "r+b") as held:     # as a running backup holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(Conflict, match="another backup into .* is running"):
            create_backup(app, tmp_path / "bk")
    assert create_backup(app, tmp_path / "bk")["copied"] == 0


def _drop_a_blob(m):
    m["blobs"] = m["blobs"][1:]


def _grow_a_blob(m):
    m["blobs"][0]["size"] += 1


def _edit_a_table(m, bk):
    """A row's bytes changed, and the table's digest with it (what an attacker would do)."""
    import hashlib
    path = bk / m["snapshot"] / "tables" / "clients.jsonl"
    edited = path.read_bytes().replace(b'"beta"', b'"evil"')
    assert edited != path.read_bytes()
    path.write_bytes(edited)
    m["table_sha256"]["clients"] = hashlib.sha256(edited).hexdigest()


def _edit_the_config(m, bk):
    path = bk / m["snapshot"] / "config" / "strongroom.toml"
    path.write_text(path.read_text() + "\n# edited\n")


def _strip_the_hmac(m):
    del m["hmac"]


EDITS = [  # (edit, what verify with the key names, whether verify without a key notices)
    (_drop_a_blob, "the manifest does not authenticate", False),
    (_grow_a_blob, "the manifest does not authenticate", True),
    (_edit_a_table, "the manifest does not authenticate", False),
    (_edit_the_config, "snapshot file config/strongroom.toml does not authenticate", False),
    (_strip_the_hmac, "the manifest carries no HMAC", False),
]


@pytest.mark.parametrize("edit, named, seen_without_key", EDITS,
                         ids=[e[0].__name__.strip("_") for e in EDITS])
def test_an_edited_manifest_is_named_by_verify_with_the_key_and_refused_by_restore(
        app, acme, tmp_path, edit, named, seen_without_key):
    import json
    client_session(app, "beta")
    bk, key = tmp_path / "bk", app.data_dir / "master.key"
    create_backup(app, bk)
    assert verify_backup(bk, key)["manifest_authenticated"] is True
    manifest = json.loads((bk / "manifest.json").read_text())
    edit(manifest, *((bk,) if edit in (_edit_a_table, _edit_the_config) else ()))
    (bk / "manifest.json").write_text(json.dumps(manifest))
    plain = verify_backup(bk)
    assert bool(plain["problems"]) is seen_without_key and not plain["manifest_authenticated"]
    keyed = verify_backup(bk, key)
    assert keyed["problems"] and keyed["problems"][0].startswith(named), keyed["problems"]
    assert not keyed["authenticated"] and not keyed["manifest_authenticated"]
    with pytest.raises(CorruptData, match=f"^the backup in {bk} does not verify: {named}"):
        restore_backup(bk, tmp_path / "new", key)
    assert not (tmp_path / "new").exists()


def test_a_wrong_key_given_to_verify_is_said_as_such(app, acme, tmp_path):
    create_backup(app, tmp_path / "bk")
    create_master_key(tmp_path / "other.key")
    out = verify_backup(tmp_path / "bk", tmp_path / "other.key")
    [problem] = out["problems"]
    assert problem.startswith("the master key does not match this backup: the key given has id ")
    assert "rotate-master" in problem


def test_a_changed_blob_is_refused_by_restore(app, acme, tmp_path):
    create_backup(app, tmp_path / "bk")
    blob = max((p for p in (tmp_path / "bk" / "blobs").rglob("*") if p.is_file()),
               key=lambda p: p.stat().st_size)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x40
    blob.write_bytes(bytes(data))
    with pytest.raises(CorruptData, match=f"blob {blob.name} .* does not authenticate"):
        restore_backup(tmp_path / "bk", tmp_path / "new", app.data_dir / "master.key")
    assert not (tmp_path / "new").exists()
