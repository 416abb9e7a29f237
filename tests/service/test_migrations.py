"""Migrations applied to populated databases, and models that match the migrations.

For every revision before the newest, a database is built at that revision holding
what an appliance of that revision held: two clients, users (two of them staff),
folders, files with several versions, a file in the trash, an SSH key, an app
password, grants and the audit trail, in the form that revision stored them (plain
SHA-256 digests before 0005, a plain SHA-256 audit chain and no anchor file before
0004, no grants before 0003). Its data directory is then opened the way an upgraded
installation is, by `App` (the daemon's next start), on SQLite and on PostgreSQL.
Every row and every column the old database held must still be there (digests and
grants as the migrations say they convert or make them), and the appliance must work
on it: logins, every version read back, the trash, rights, a new upload, the audit
chain verified.

The rows come from a real appliance at the newest revision, taken back to each
revision's form: data keys, blobs and password hashes are real, so reading and
logging in prove that the upgraded rows still fit together.
"""
import hashlib
import json
import shutil
import warnings
from contextlib import contextmanager

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import MetaData, create_engine, func, select, text
from sqlalchemy.exc import SAWarning

from strongroom import config as configmod
from strongroom.appliance.app import App
from strongroom.appliance.keysource import key_id
from strongroom.appliance.db import default_url, migrate
from strongroom.appliance.db.models import Base, Version
from strongroom.appliance.errors import NotFound
from strongroom.providers import crypto
from strongroom.providers import digest as digests
from tests.support import postgres
from tests.support.sessions import PASSWORD, get, put

GENESIS = "0" * 64
# What an audit event's digest covers (appliance/service/audit.py), in this order.
AUDIT_FIELDS = ("ts", "actor", "protocol", "address", "action", "path", "outcome", "detail")
DRAFTS = [f"report, draft {n}\n".encode() * n for n in (1, 2, 3)]   # /acme/docs/report.txt


def _revisions() -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(migrate._config(None))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


REVISIONS = _revisions()


def before(revision: str, other: str) -> bool:
    return REVISIONS.index(revision) < REVISIONS.index(other)


# -- an appliance at the newest revision, filled as its users would ---------------------

def populate(app) -> dict[int, bytes]:
    """Fill `app` through the admin and user Sessions; return {version id: content}."""
    admin = app.admin()
    admin.add_client("acme", quota=10 << 30)
    admin.set_client("acme", display_name="Acme Ltd")
    admin.add_client("beta")
    for name, client in (("alice", "acme"), ("bob", "beta"), ("sam", None), ("sue", None)):
        admin.add_user(name, client=client, staff=client is None, email=f"{name}@example.org",
                       password=PASSWORD, with_totp=False)
    admin.add_user("tina", client="acme", staff=False, email=None, password=PASSWORD,
                   with_totp=True)
    admin.grant("/acme", login="sam", rights="read,write,delete,manage")
    admin.add_key("alice", _ssh_key_line())
    admin.create_app_password("alice", "laptop", None)
    alice, bob = login(app, "alice"), login(app, "bob")
    alice.mkdir("/docs")
    admin.grant("/acme/docs", login="sue", rights="read")
    contents = {_write(app, alice, "/docs/report.txt", data): data for data in DRAFTS}
    for session, path, data in ((alice, "/docs/old.txt", b"soon in the trash"),
                                (alice, "/big.bin", bytes(range(256)) * 1000),
                                (bob, "/b.txt", b"beta's own")):
        contents[_write(app, session, path, data)] = data
    alice.remove("/docs/old.txt")
    return contents


def login(app, who: str):
    return app.session(app.auth.password_login(who, PASSWORD, "test", "127.0.0.1"), "test",
                       "127.0.0.1")


def _write(app, session, path: str, data: bytes) -> int:
    put(session, path, data)
    with app.db.read() as s:
        return s.scalar(select(func.max(Version.id)))


def _ssh_key_line() -> str:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(serialization.Encoding.OpenSSH,
                               serialization.PublicFormat.OpenSSH).decode() + " alice@laptop"


def reflect(engine) -> MetaData:
    meta = MetaData()
    with warnings.catch_warnings():   # SQLite cannot reflect expression indexes; not needed here
        warnings.simplefilter("ignore", SAWarning)
        meta.reflect(engine)
    return meta


def snapshot(url: str) -> dict[str, list[dict]]:
    """Every row of every table (alembic's own left out), in primary key order."""
    engine = create_engine(url)
    try:
        meta = reflect(engine)
        with engine.connect() as c:
            return {t.name: [{k: bytes(v) if isinstance(v, memoryview) else v
                              for k, v in row._mapping.items()}
                             for row in c.execute(select(t).order_by(*t.primary_key.columns))]
                    for t in meta.sorted_tables if t.name != "alembic_version"}
    finally:
        engine.dispose()


# -- the same rows, as an older revision stored them ------------------------------------

def as_stored_at(revision: str, rows: dict, contents: dict) -> dict[str, list[dict]]:
    """`rows` in the form `revision` kept them (columns it did not have are dropped
    when inserting)."""
    rows = {table: [dict(r) for r in table_rows] for table, table_rows in rows.items()}
    if before(revision, "0005"):          # versions.sha256: a plain digest of the content
        for v in rows["versions"]:
            v["sha256"] = hashlib.sha256(contents[v["id"]]).hexdigest()
    if before(revision, "0004"):          # a plain SHA-256 chain, nothing anchored
        prev = GENESIS
        for event in rows["audit_events"]:
            body = json.dumps([event[k] for k in AUDIT_FIELDS], ensure_ascii=False,
                              separators=(",", ":")).encode()
            event["prev_hash"], prev = prev, hashlib.sha256(prev.encode() + body).hexdigest()
            event["hash"] = prev
        rows["audit_head"] = [{"id": 1, "last_hash": prev, "count": len(rows["audit_events"])}]
    return rows


@contextmanager
def empty_database(kind: str, data_dir):
    """The URL of an empty database of `kind` for the data directory `data_dir`."""
    if kind == "sqlite":
        yield default_url(data_dir)
    else:
        with postgres.fresh_database() as url:
            yield url


def build_at(revision: str, url: str, rows: dict) -> dict[str, set[str]]:
    """Migrate the empty database at `url` to `revision`, insert `rows` into it, and
    return {table: its columns} at that revision."""
    engine = create_engine(url)
    try:
        command.upgrade(migrate._config(engine), revision)
        meta = reflect(engine)
        tables = [t for t in meta.sorted_tables if t.name in rows]
        with engine.begin() as c:
            for t in reversed(tables):
                c.execute(t.delete())               # what the migrations inserted themselves
            for t in tables:
                if rows[t.name]:
                    c.execute(t.insert(), [{k: v for k, v in row.items() if k in t.c}
                                           for row in rows[t.name]])
            if engine.dialect.name == "postgresql":  # as if the rows had been inserted one by one
                for t in tables:
                    if "id" in t.c:
                        c.execute(text(f"SELECT setval(pg_get_serial_sequence('{t.name}', 'id'), "
                                       f"max(id)) FROM {t.name}"))
        return {t.name: set(t.c.keys()) for t in meta.sorted_tables}
    finally:
        engine.dispose()


def derived_from_the_master_key(data_dir) -> None:
    """The 'derive' row an appliance made before 0010 gets at its first start: its
    derived keys (the audit chain's) come from its master key, as they always did
    (a new appliance's come from a random base: appliance.service.keys_store)."""
    key = (data_dir / "master.key").read_bytes()
    kid = key_id(key)
    engine = create_engine(configmod.load(data_dir).database.url or default_url(data_dir))
    try:
        with engine.begin() as c:
            for name, wrapped in (("master", None), ("derive", crypto.wrap_key(key, key))):
                c.execute(text("INSERT INTO appliance_keys (name, key_id, wrapped, "
                               "master_key_id, created_at) VALUES (:n, :k, :w, :m, 0)"),
                          {"n": name, "k": kid, "w": wrapped, "m": kid if wrapped else None})
    finally:
        engine.dispose()


def old_data_dir(source, target, revision: str, old_url: str | None, new_url: str | None):
    """`source`'s keys, blobs and config in `target`, its database left out, and for
    revisions before the keyed chain (0004) no audit anchor either."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("strongroom.db*"))
    if old_url:
        conf = target / "strongroom.toml"
        assert old_url in conf.read_text("utf-8")
        conf.write_text(conf.read_text("utf-8").replace(old_url, new_url), "utf-8")
    if before(revision, "0004"):
        anchors = [p for p in target.iterdir() if "anchor" in p.name]
        assert len(anchors) == 1, anchors
        anchors[0].unlink()


# -- the tests ----------------------------------------------------------------------------

@pytest.mark.parametrize("revision", REVISIONS[:-1])
def test_an_upgraded_populated_database_keeps_its_rows_and_works(revision, data_dir,
                                                                 database_url, tmp_path):
    derived_from_the_master_key(data_dir)
    source = App(data_dir)
    try:
        contents = populate(source)
    finally:
        source.close()                             # which writes the audit anchor
    new = snapshot(source.db.url)
    digest_keys = {c["id"]: source.keyring.digest_key(c["wrapped_key"]) for c in new["clients"]}
    assert set(contents) == {v["id"] for v in new["versions"]}
    old = as_stored_at(revision, new, contents)
    kind = "postgresql" if database_url else "sqlite"
    target = tmp_path / "old"
    with empty_database(kind, target) as url:
        old_data_dir(data_dir, target, revision, database_url, url)
        columns_then = build_at(revision, url, old)
        upgraded = App(target)                     # migrates, re-chains, re-keys
        try:
            after = snapshot(url)
            assert_rows_survive(revision, columns_then, old, new, after, url, digest_keys)
            assert_it_works(upgraded, revision)
        finally:
            upgraded.close()


def assert_rows_survive(revision, columns_then, old, new, after, url, digest_keys) -> None:
    """Every row of `old` is in `after` with every column it had, the same but for what
    the upgrade converts: re-keyed digests, and a chain re-made under the key, which is
    exactly the chain the newest appliance wrote (`new`)."""
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            assert set(migrate.current(c)) == migrate.heads()
    finally:
        engine.dispose()
    assert {"clients", "users", "nodes", "versions", "audit_events"} <= set(columns_then)
    for table, rows in old.items():
        if table not in columns_then or table == "audit_head":
            continue      # not there yet (made by a migration: see below), or the chain's end
        now = {_key(table, r): r for r in after[table]}
        newest = {_key(table, r): r for r in new[table]}
        for row in rows:
            kept = now.get(_key(table, row))
            assert kept is not None, f"{table} lost {row}"
            for column in columns_then[table] & set(kept):
                if (table, column) == ("versions", "digest") and before(revision, "0005"):
                    continue                                 # checked below
                if table == "audit_events" and column.endswith("hash") and \
                        before(revision, "0004"):
                    assert kept[column] == newest[_key(table, row)][column]
                else:
                    assert kept[column] == row[column], (table, column, row)
    if before(revision, "0005"):     # re-keyed at the first start: "k1:" + keyed digest
        node_client = {n["id"]: n["client_id"] for n in after["nodes"]}
        for v in old["versions"]:
            kept = next(r for r in after["versions"] if r["id"] == v["id"])
            key = digest_keys[node_client[v["node_id"]]]
            assert kept["digest"] == digests.rekey_legacy(key, v["sha256"])
    if before(revision, "0003"):     # 0003: clients' users rwd, and staff keep every client
        clients = [c["id"] for c in after["clients"]]
        staff = [u["id"] for u in after["users"] if u["role"] == "staff"]
        assert sorted(_grant(g) for g in after["acl_grants"]) == sorted(
            [(c, "/", "client", c, "rwd") for c in clients]
            + [(c, "/", "user", u, "rwdm") for c in clients for u in staff])


def _key(table: str, row: dict) -> tuple:
    return tuple(row[c.name] for c in Base.metadata.tables[table].primary_key.columns)


def _grant(g: dict) -> tuple:
    return (g["client_id"], g["path"], g["subject_kind"], g["subject_id"], g["rights"])


def assert_it_works(app, revision) -> None:
    alice, sam, sue, bob = (login(app, who) for who in ("alice", "sam", "sue", "bob"))
    versions = alice.versions("/docs/report.txt")
    assert [get(alice, "/docs/report.txt", v.id) for v in versions] == DRAFTS
    assert [v.current for v in versions] == [False, False, True]
    assert get(alice, "/big.bin") == bytes(range(256)) * 1000
    [item] = alice.list("/@trash/docs")
    assert item.name.endswith(" old.txt")
    assert get(alice, f"/@trash/docs/{item.name}") == b"soon in the trash"
    assert get(bob, "/b.txt") == b"beta's own"
    with pytest.raises(NotFound):
        get(bob, "/docs/report.txt")           # beta's user sees beta's tree only
    if before(revision, "0003"):               # staff kept every client, with every right
        assert sorted(e.name for e in sam.list("/")) == ["acme", "beta"]
        assert sorted(e.name for e in sue.list("/")) == ["acme", "beta"]
    else:
        assert [e.name for e in sam.list("/")] == [e.name for e in sue.list("/")] == ["acme"]
        seen = [e.name for e in sue.list("/acme")]
        assert "docs" in seen and "big.bin" not in seen
    put(alice, "/docs/report.txt", b"written after the upgrade")
    assert get(sam, "/acme/docs/report.txt") == b"written after the upgrade"
    verdict = app.admin().verify_audit()
    assert verdict.problem is None, verdict
    if before(revision, "0004"):
        rekey = app.admin().audit_events(action="audit-rekey")
        assert len(rekey) == 1 and "verified" in rekey[0]["detail"], rekey


# -- models and migrations ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.filterwarnings("ignore:.*expression-based index")    # checked by hand below
def test_the_models_and_the_migrations_describe_the_same_schema(kind, tmp_path):
    """alembic's autogenerate, run against a database made by the migrations alone,
    finds nothing to add, drop or change (types and server defaults included)."""
    with empty_database(kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            command.upgrade(migrate._config(engine), "head")
            with engine.connect() as c:
                context = MigrationContext.configure(c, opts={
                    "compare_type": True, "compare_server_default": _same_default})
                assert compare_metadata(context, Base.metadata) == []
                if kind == "sqlite":     # expression indexes, which SQLite cannot reflect
                    assert_expression_indexes(c)
        finally:
            engine.dispose()


def _same_default(context, inspected_column, metadata_column, inspected_default,
                  metadata_default, rendered_metadata_default):
    """SQLite stores `false` as it was rendered ('0'): the same default."""
    def norm(d):
        d = (d or "").strip("'\"() ").lower()
        return {"0": "false", "1": "true"}.get(d, d)
    if context.dialect.name == "sqlite":
        return norm(inspected_default) != norm(rendered_metadata_default)
    return None      # alembic's own comparison


def assert_expression_indexes(c) -> None:
    wanted = {ix.name: ix for t in Base.metadata.tables.values() for ix in t.indexes
              if any(not hasattr(e, "name") for e in ix.expressions)}
    found = dict(c.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")).all())
    for name, ix in wanted.items():
        assert name in found, name
        assert ("UNIQUE" in found[name]) == bool(ix.unique), found[name]
        for e in ix.expressions:
            assert str(e.compile(c)).replace(" ", "") in found[name].replace(" ", ""), found[name]
