"""Offboarding a client (issue 14): `client remove NAME [--shred]` on SQLite and
PostgreSQL. After a shred no row of any table refers to the client, its users or
its nodes (read off the database's own schema, so a table added later is counted
too), its blobs are gone from disk, its wrapped key is nowhere in the database, the
audit trail verifies and its one new event holds counts, not names. Without
--shred a client with files is refused and nothing changes."""
import json

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import inspect, select, text

from strongroom.appliance.app import App
from strongroom.appliance.cli import main
from strongroom.appliance.db import repo
from strongroom.appliance.db.models import AuditEvent, LoginThrottle, NotifyDigest
from strongroom.appliance.errors import (AuthFailed, BadRequest, Conflict, MissingParent,
                                         NotFound)
from strongroom.appliance.service import invitations
from tests.support.sessions import PASSWORD, client_session, get, put, staff_session

SECRET_NAME = "payroll-2026-confidential.xlsx"


def _public_key_line() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode() + " ann@laptop"


def run(data_dir, *args, input=None):
    return CliRunner().invoke(main, [*map(str, args), "--data-dir", str(data_dir)],
                              input=input)


def _busy_client(app):
    """acme with files, folders, versions, trash, a dead property, a lock, two users
    with an SSH key, an app password, a portal session, an invitation, a failed
    login and a waiting message, grants, and a library membership; beta beside it."""
    acme = client_session(app, "acme", "ann")
    acme.mkdir("/docs")
    put(acme, f"/docs/{SECRET_NAME}", b"v1" * 1000)
    put(acme, f"/docs/{SECRET_NAME}", b"v2" * 1000)
    put(acme, "/gone.txt", b"to the trash")
    acme.remove("/gone.txt")
    acme.set_dead_property("/docs", "{urn:x}colour", "red")
    acme.lock(f"/docs/{SECRET_NAME}", {"type": "write", "scope": "exclusive",
                                       "depth": "0", "owner": "", "timeout": 600,
                                       "principal": "ann"})
    admin = app.admin()
    admin.add_user("bea", client="acme", staff=False, email="bea@example.org",
                   password=PASSWORD, with_totp=True)
    admin.add_key("ann", _public_key_line())
    admin.create_app_password("ann", "laptop", None)
    admin.create_app_password("bea", "phone", None)      # a security notice waits for bea
    app.web_sessions.open(app.auth.principal_of("ann"), "10.0.0.9", "test")
    with app.db.write() as s:
        invitations.create(s, repo.user_by_login(s, "bea").id, 3600)
    with pytest.raises(AuthFailed):
        app.auth.password_login("bea", "wrong-password-x", "webdav", "192.0.2.9")
    staff_session(app, "sam")
    admin.grant("/acme/docs", login="sam", rights="read")
    admin.grant("/acme/docs", login="ann", rights="read,write")
    admin.grant("/acme/docs", client="acme", rights="read")
    admin.add_library("handbook", ["acme"])
    beta = client_session(app, "beta", "bob")
    put(beta, "/keep.txt", b"beta's own bytes")
    return acme, beta


def _ids(app, name):
    """(client id, user ids, logins, node ids, blob ids, wrapped client key)."""
    with app.db.read() as s:
        client = repo.client_by_name(s, name)
        users = s.execute(text("SELECT id, login FROM users WHERE client_id = :c"),
                          {"c": client.id}).all()
        nodes = list(s.scalars(text("SELECT id FROM nodes WHERE client_id = :c"),
                               {"c": client.id}))
        blobs = list(s.scalars(text("SELECT blob_id FROM versions WHERE node_id IN "
                                    "(SELECT id FROM nodes WHERE client_id = :c)"),
                               {"c": client.id}))
        return (client.id, {u.id for u in users}, {u.login for u in users}, set(nodes),
                set(blobs), client.wrapped_key)


def _referring(app, client_id, user_ids, logins, node_ids) -> dict[str, int]:
    """Rows of every table (but the audit trail) referring to the client, its users
    or its nodes: by a foreign key, by a column name, or by name in a key or path."""
    ids = {"clients": {client_id}, "users": user_ids, "nodes": node_ids}
    by_name = {"client_id": ids["clients"], "library_id": ids["clients"],
               "user_id": ids["users"], "actor_id": ids["users"], "node_id": ids["nodes"]}
    found = {}
    with app.db.read() as s:
        schema = inspect(s.connection())
        for table in schema.get_table_names():
            if table.startswith("audit_") or table == "alembic_version":
                continue
            checks = dict((col, by_name[col]) for col in
                          (c["name"] for c in schema.get_columns(table)) if col in by_name)
            for fk in schema.get_foreign_keys(table):
                if fk["referred_table"] in ids:
                    checks[fk["constrained_columns"][0]] = ids[fk["referred_table"]]
            if table in ids:
                checks["id"] = ids[table]
            for column, values in checks.items():
                n = s.scalar(text(f"SELECT count(*) FROM {table} WHERE {column} IN "
                                  f"({','.join(map(str, values or {-1}))})"))
                if n:
                    found[f"{table}.{column}"] = n
        special = {
            "acl_grants.subject": "SELECT count(*) FROM acl_grants WHERE "
            f"(subject_kind = 'client' AND subject_id = {client_id}) OR (subject_kind = "
            f"'user' AND subject_id IN ({','.join(map(str, user_ids or {-1}))}))",
            "dav_locks.root": "SELECT count(*) FROM dav_locks WHERE root = '/acme' "
                              "OR root LIKE '/acme/%'",
        }
        for what, sql in special.items():
            if s.scalar(text(sql)):
                found[what] = s.scalar(text(sql))
        for login in logins:
            if s.scalar(select(LoginThrottle.key).where(
                    LoginThrottle.key == f"login:{login.lower()}")):
                found[f"login_throttle:{login}"] = 1
            if s.scalar(text("SELECT count(*) FROM dav_locks WHERE principal = :p"),
                        {"p": login}):
                found[f"dav_locks.principal:{login}"] = 1
    return found


def _tables_containing(app, needle: bytes) -> list[str]:
    """Columns of binary type holding `needle` in any row, the audit trail included."""
    found = []
    with app.db.read() as s:
        schema = inspect(s.connection())
        for table in schema.get_table_names():
            for col in schema.get_columns(table):
                if "BLOB" in str(col["type"]).upper() or "BYTEA" in str(col["type"]).upper():
                    rows = s.scalars(text(f"SELECT {col['name']} FROM {table}"))
                    if any(r is not None and needle in bytes(r) for r in rows):
                        found.append(f"{table}.{col['name']}")
    return found


def _files_containing(folder, needle: bytes) -> list[str]:
    return [p.name for p in folder.iterdir() if p.is_file() and needle in p.read_bytes()]


def test_shred_leaves_no_row_no_blob_no_key_and_the_trail_verifies(app):
    acme, beta = _busy_client(app)
    client_id, user_ids, logins, node_ids, blobs, wrapped = _ids(app, "acme")
    referring = _referring(app, client_id, user_ids, logins, node_ids)
    # the scenario really made rows of each kind the removal must delete
    for kind in ("nodes.client_id", "versions.node_id", "dav_properties.node_id",
                 "user_keys.user_id", "app_passwords.user_id", "web_sessions.user_id",
                 "invitations.user_id", "notify_events.client_id", "acl_grants.client_id",
                 "library_members.client_id", "users.client_id", "acl_grants.subject",
                 "dav_locks.root", "login_throttle:bea", "notify_digests.user_id"):
        assert kind in referring, (kind, referring)
    assert blobs <= set(app.provider.blob_ids()) and len(blobs) == 3
    beta_blobs = _ids(app, "beta")[4]

    out = app.admin().remove_client("acme", shred=True)

    assert out == {"name": "acme", "shredded": True, "files": 2, "folders": 1,
                   "versions": 3, "bytes": 4000 + len(b"to the trash"), "users": 2}
    assert _referring(app, client_id, user_ids, logins, node_ids) == {}
    with app.db.read() as s:
        assert repo.client_by_name(s, "acme") is None
        assert s.scalar(text("SELECT count(*) FROM clients WHERE id = :c"), {"c": client_id}) == 0
    assert _tables_containing(app, wrapped) == []
    if app.db.url.startswith("sqlite"):      # nor in the file's free space, nor its log
        assert _files_containing(app.data_dir, wrapped) == []
    left = set(app.provider.blob_ids())
    assert left & blobs == set() and beta_blobs <= left
    assert get(beta, "/keep.txt") == b"beta's own bytes"
    verified, bad = app.admin().verify_audit()[:2]
    assert bad is None and verified > 20
    with app.db.read() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "client-remove")).one()
    assert (event.path, event.outcome) == ("/acme", "ok")
    assert event.detail == ("files=2 folders=1 versions=3 users=2 bytes=4012 shred=True")
    for login in logins:
        with pytest.raises(AuthFailed):
            app.auth.password_login(login, PASSWORD, "webdav", "127.0.0.1")


def test_the_sessions_of_a_shredded_clients_users_fail_as_not_found(app):
    acme, _ = _busy_client(app)
    app.admin().remove_client("acme", shred=True)
    for attempt in (lambda: acme.list("/docs"), lambda: get(acme, f"/docs/{SECRET_NAME}"),
                    lambda: put(acme, "/new.txt", b"after"), lambda: acme.mkdir("/new")):
        with pytest.raises(NotFound):
            attempt()


def _row_counts(app) -> dict[str, int]:
    with app.db.read() as s:
        return {t: s.scalar(text(f"SELECT count(*) FROM {t}"))
                for t in inspect(s.connection()).get_table_names()}


def test_without_shred_a_client_with_files_is_refused_and_nothing_changes(app):
    acme = client_session(app, "acme", "ann")
    put(acme, "/only.txt", b"x")
    acme.remove("/only.txt")              # in the trash: still a file of the client
    before, blobs = _row_counts(app), set(app.provider.blob_ids())
    with pytest.raises(Conflict, match=r"^acme still has 1 file \(the trash and versions "
                                       r"counted\); export them \(strongroom client export"):
        app.admin().remove_client("acme")
    assert _row_counts(app) == before and set(app.provider.blob_ids()) == blobs
    r = run(app.data_dir, "client", "remove", "acme")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith("strongroom: error: acme still has 1 file")
    assert r.stderr.count("\n") == 1 and "--shred --yes" in r.stderr
    assert _row_counts(app)["clients"] == before["clients"]


def test_a_client_without_files_is_removed_without_shred_with_its_users(app):
    client_session(app, "empty", "eve")
    app.admin().add_folder("/empty/inbox")       # a folder is not a file
    client_id, user_ids, logins, node_ids, _, wrapped = _ids(app, "empty")
    out = json.loads(run(app.data_dir, "client", "remove", "empty", "--json").stdout)
    assert out == {"name": "empty", "shredded": False, "files": 0, "folders": 1,
                   "versions": 0, "bytes": 0, "users": 1}
    assert _referring(app, client_id, user_ids, logins, node_ids) == {}
    assert _tables_containing(app, wrapped) == []


def test_cli_shred_needs_yes_off_a_terminal_and_says_what_it_did(app):
    acme = client_session(app, "acme", "ann")
    put(acme, "/a.txt", b"12345")
    r = run(app.data_dir, "client", "remove", "acme", "--shred")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert "add --yes" in r.stderr
    with app.db.read() as s:
        assert repo.client_by_name(s, "acme") is not None
    r = run(app.data_dir, "client", "remove", "acme", "--shred", "--yes")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "client acme removed: 1 files, 1 versions (5 B), 1 users; " \
                       "its key is destroyed\n"


@pytest.mark.parametrize("args, message", [
    (("nobody", "--shred", "--yes"), "no client named 'nobody'"),
    (("ACME", "--shred", "--yes"), "no client named 'ACME' (did you mean 'acme'?)"),
    (("handbook", "--shred", "--yes"),
     "handbook is a library: remove it with 'strongroom library remove handbook "
     "--with-files'"),
    (("handbook",), "handbook is a library"),
])
def test_unknown_clients_and_libraries_are_one_line_and_nothing_changes(app, args, message):
    client_session(app, "acme", "ann")
    app.admin().add_library("handbook", None)
    before = _row_counts(app)
    r = run(app.data_dir, "client", "remove", *args)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"strongroom: error: {message}")
    assert _row_counts(app) == before
    with pytest.raises((NotFound, BadRequest)):
        app.admin().remove_client(args[0], shred=True)


def test_a_waiting_message_for_a_removed_user_goes_with_it(app):
    _busy_client(app)
    with app.db.read() as s:
        bea = repo.user_by_login(s, "bea").id
        assert s.scalar(select(NotifyDigest.id).where(NotifyDigest.user_id == bea))
    app.admin().remove_client("acme", shred=True)
    with app.db.read() as s:
        assert s.scalar(select(NotifyDigest.id).where(NotifyDigest.user_id == bea)) is None


def test_another_process_still_remembering_the_client_fails_as_not_found(app):
    """The daemon remembers a client for ACCESS_TTL: a write or read it starts in
    that time, after the removal committed in another process (the CLI), is refused
    as for a removed client, not an internal error."""
    acme, _ = _busy_client(app)
    put(acme, "/warm.txt", b"the session now remembers its client")
    cli = App(app.data_dir)
    try:
        cli.admin().remove_client("acme", shred=True)
    finally:
        cli.close()
    for attempt in (lambda: put(acme, "/after.txt", b"after"),
                    lambda: put(acme, f"/docs/{SECRET_NAME}", b"over"),
                    lambda: get(acme, "/warm.txt"), lambda: acme.mkdir("/new")):
        # within ACCESS_TTL a new name finds no parent folder (a 409 over WebDAV, an
        # SFTP failure with that message); after it, the client is not found
        with pytest.raises((NotFound, MissingParent)):
            attempt()
    with app.db.read() as s:
        assert s.scalar(text("SELECT count(*) FROM nodes WHERE client_id NOT IN "
                             "(SELECT id FROM clients)")) == 0
