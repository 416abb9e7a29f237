"""The admin's lifecycle commands (issue 10) through the real CLI (click's runner,
in process), on SQLite and PostgreSQL: client set/rename/show, user
set/rename/remove, library list/remove, folder add; names unique without regard
to case; quotas that must say their unit. Effects on logins and open sessions of
the real daemon are in test_e2e_lifecycle.py."""
import json
import time

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from strongroom.appliance.app import App
from strongroom.appliance.cli import main
from strongroom.appliance.cli.owner import invoker
from strongroom.appliance.db import migrate
from strongroom.appliance.db.models import AppPassword, LoginThrottle
from strongroom.appliance.errors import AuthFailed, NotFound
from strongroom.appliance.service import login
from strongroom.appliance.service.access import ACCESS_TTL
from strongroom.config.converters import size
from tests.support.sessions import PASSWORD, admin_session, client_session, get, put


def run(data_dir, *args, input=None):
    return CliRunner().invoke(main, [*map(str, args), "--data-dir", str(data_dir)],
                              input=input)


def ok(data_dir, *args, input=None):
    """stdout of a command that must succeed; parsed when it was asked for --json."""
    r = run(data_dir, *args, input=input)
    assert r.exit_code == 0, (args, r.stderr, r.exception)
    return json.loads(r.stdout) if "--json" in args else r.stdout


def error(data_dir, *args) -> str:
    """The one error line of a command that must fail."""
    r = run(data_dir, *args)
    assert r.exit_code == 1, (args, r.exit_code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("strongroom: error: "), r.stderr
    return lines[0]


def usage_error(data_dir, *args) -> str:
    r = run(data_dir, *args)
    assert r.exit_code == 2 and "Traceback" not in r.stderr, (args, r.stderr)
    return r.stderr


def staff(app, login="sam"):
    app.admin().add_user(login, client=None, staff=True, email=None, password=PASSWORD,
                         with_totp=False)
    return app.session(app.auth.password_login(login, PASSWORD, "test"), "test")


def names(entries):
    return sorted(e.name for e in entries)


# -- quotas ------------------------------------------------------------------------------

def test_a_quota_needs_a_unit_and_is_shown_as_what_it_means(data_dir):
    for bare in ("10", "10G", "0.5"):
        out = error(data_dir, "client", "add", "acme", "--quota", bare)
        assert "10GiB, 500MB" in out and repr(bare) in out
    assert "above zero" in error(data_dir, "client", "add", "acme", "--quota", "0GB")
    assert ok(data_dir, "client", "add", "acme", "--quota", "10GB").strip() == \
        "client acme created, quota 10.0 GB (10000000000 bytes)"
    assert ok(data_dir, "client", "add", "beta", "--quota", "10GiB").strip() == \
        "client beta created, quota 10.0 GiB (10737418240 bytes)"
    assert "none for no quota" in error(data_dir, "client", "set", "acme", "--quota", "5")
    assert "for no quota give 'none'" in error(data_dir, "client", "set", "acme",
                                                     "--quota", "0MiB")
    assert ok(data_dir, "client", "set", "acme", "--quota", "500MB", "--json")[
        "quota_bytes"] == 500 * 1000**2
    assert ok(data_dir, "client", "set", "acme", "--quota", "none", "--json")[
        "quota_bytes"] is None
    assert "no quota" in ok(data_dir, "client", "show", "acme")
    assert size("10") == 10, "the config file's sizes keep meaning bytes without a unit"


# -- names unique without regard to case ------------------------------------------------------

def test_names_are_unique_without_regard_to_case(data_dir):
    ok(data_dir, "client", "add", "acme")
    ok(data_dir, "client", "add", "beta")
    ok(data_dir, "library", "add", "handbook")
    ok(data_dir, "user", "add", "alice", "--client", "acme", "--no-totp")
    ok(data_dir, "user", "add", "bob", "--client", "beta", "--no-totp")
    taken = [("client", "add", "Acme"), ("client", "add", "HANDBOOK"),
             ("library", "add", "ACME"), ("library", "add", "Handbook"),
             ("client", "rename", "beta", "ACME"), ("client", "rename", "beta", "handBook"),
             ("user", "add", "Alice", "--client", "beta", "--no-totp"),
             ("user", "rename", "bob", "ALICE")]
    for args in taken:
        assert "unique without regard to case" in error(data_dir, *args), args
    assert "a client named 'acme' already exists" in error(data_dir, "client", "add", "acme")
    ok(data_dir, "client", "rename", "acme", "Acme")   # its own name, in another case
    ok(data_dir, "user", "rename", "alice", "Alice")
    assert [c["name"] for c in ok(data_dir, "client", "list", "--json")] == ["Acme", "beta"]
    assert "did you mean 'Acme'?" in error(data_dir, "client", "show", "acme")
    assert "did you mean 'Alice'?" in error(data_dir, "user", "set", "alice", "--language", "en")


# -- clients -------------------------------------------------------------------------------

def test_client_set_and_show(app, data_dir):
    alice = client_session(app, "acme", "alice")
    put(alice, "/a.txt", b"x" * 1000)
    ok(data_dir, "library", "add", "handbook")
    ok(data_dir, "library", "add", "beta-only", "--clients", "acme")
    staff(app)
    ok(data_dir, "acl", "grant", "/acme", "--user", "sam", "--rights", "read")
    assert "nothing to change" in error(data_dir, "client", "set", "acme")
    out = ok(data_dir, "client", "set", "acme", "--display-name", "Acme Ltd", "--quota", "1GB",
             "--disable", "--json")
    assert out == {"name": "acme", "display_name": "Acme Ltd", "quota_bytes": 10**9,
                   "used_bytes": 1000, "disabled": True}
    shown = ok(data_dir, "client", "show", "acme", "--json")
    assert shown["users"] == [{"login": "alice", "email": None, "display_name": None,
                               "totp": False, "disabled": False}]
    assert shown["grants"] == [{"path": "/acme", "client": "acme",
                                "rights": "read,write,delete"},
                               {"path": "/acme", "user": "sam", "rights": "read"}]
    assert shown["libraries"] == ["beta-only", "handbook"]
    human = ok(data_dir, "client", "show", "acme")
    assert "client acme (Acme Ltd) [disabled]" in human
    assert "quota 1.0 GB (1000000000 bytes), 1.0 kB (1000 bytes) used" in human
    with pytest.raises(AuthFailed):   # a disabled client's users do not log in
        app.auth.password_login("alice", PASSWORD, "test")
    ok(data_dir, "client", "set", "acme", "--enable", "--display-name", "")
    assert app.auth.password_login("alice", PASSWORD, "test").login == "alice"
    assert ok(data_dir, "client", "show", "acme", "--json")["display_name"] is None
    actions = [e["detail"] for e in ok(data_dir, "audit", "list", "--action", "client-set",
                                       "--json")]
    assert actions == ["quota=1000000000 display_name=Acme Ltd disabled=True",
                       "display_name=None disabled=False"]


def test_client_rename_grants_libraries_locks_open_sessions_and_audit_follow(app, data_dir):
    alice = client_session(app, "acme", "alice")
    alice.mkdir("/inbox")
    put(alice, "/inbox/before.txt", b"before")
    sam = staff(app)
    app.admin().grant("/acme/inbox", login="sam", rights="read,write")
    app.admin().grant("/acme/inbox", client="acme", rights="read,write")
    app.admin().add_library("handbook", ["acme"])
    alice.lock("/inbox/before.txt", {"depth": "0", "scope": "exclusive", "type": "write",
                                     "owner": "", "principal": "alice", "timeout": 600})
    assert ok(data_dir, "client", "rename", "acme", "acme-ltd", "--json")["name"] == "acme-ltd"
    time.sleep(ACCESS_TTL)   # what this process's sessions remember of the old name
    assert names(alice.list("/")) == ["@trash", "@versions", "handbook", "inbox"]
    put(alice, "/inbox/after.txt", b"after")
    assert names(sam.list("/")) == ["acme-ltd", "handbook"]
    assert get(sam, "/acme-ltd/inbox/after.txt") == b"after"
    with pytest.raises(NotFound):
        sam.list("/acme")
    assert sorted((g["path"], g.get("user") or g.get("client")) for g in
                  ok(data_dir, "acl", "list", "--json")) == [
        ("/acme-ltd", "acme-ltd"), ("/acme-ltd/inbox", "acme-ltd"), ("/acme-ltd/inbox", "sam")]
    assert ok(data_dir, "library", "list", "--json")[0]["clients"] == ["acme-ltd"]
    assert [lock["path"] for lock in ok(data_dir, "locks", "list", "--json")] == \
        ["/acme-ltd/inbox/before.txt"]
    assert [u["client"] for u in ok(data_dir, "user", "list", "--json")] == ["acme-ltd", None]
    # the trail keeps /acme; the new name finds those events, a new 'acme' does not
    ok(data_dir, "client", "add", "acme")
    followed = ok(data_dir, "audit", "list", "--client", "acme-ltd", "--all", "--json")
    assert ("client-add", "/acme") in [(e["action"], e["path"]) for e in followed]
    assert {("write", "/acme/inbox/before.txt"), ("write", "/acme-ltd/inbox/after.txt")} <= \
        {(e["action"], e["path"]) for e in followed}
    rename = [e for e in followed if e["action"] == "client-rename"]
    assert rename and rename[0]["path"] == "/acme-ltd" and \
        rename[0]["detail"].startswith("from=acme to=acme-ltd")
    assert [e["action"] for e in
            ok(data_dir, "audit", "list", "--client", "acme", "--all", "--json")] == ["client-add"]
    assert ok(data_dir, "audit", "verify", "--json")["ok"] is True


# -- users ---------------------------------------------------------------------------------

def test_user_set(data_dir):
    ok(data_dir, "client", "add", "acme")
    ok(data_dir, "user", "add", "alice", "--client", "acme", "--no-totp")
    out = ok(data_dir, "user", "set", "alice", "--email", "alice@acme.example",
             "--display-name", "Alice Andersson", "--language", "he", "--json")
    assert (out["email"], out["display_name"], out["language"]) == \
        ("alice@acme.example", "Alice Andersson", "he")
    assert "not one of" in usage_error(data_dir, "user", "set", "alice", "--language", "de")
    assert "not an email address" in error(data_dir, "user", "set", "alice", "--email", "a b@c")
    assert "nothing to change" in error(data_dir, "user", "set", "alice")
    assert ok(data_dir, "user", "set", "alice", "--email", "", "--json")["email"] is None
    assert ok(data_dir, "user", "list", "--json")[0]["language"] == "he"
    assert [e["detail"] for e in ok(data_dir, "audit", "list", "--action", "user-set",
                                    "--json")][0].startswith("login=alice email=alice@acme")


def test_user_rename_keeps_grants_keys_and_locks_and_the_old_login_stops(app, data_dir,
                                                                        tmp_path, monkeypatch):
    monkeypatch.setattr(login, "RECHECK_SECONDS", 0)   # remembered logins: read again now
    alice = client_session(app, "acme", "alice")
    alice.mkdir("/inbox")
    app.admin().grant("/acme/inbox", login="alice", rights="read,write,delete,manage")
    alice.lock("/inbox", {"depth": "infinity", "scope": "exclusive", "type": "write",
                          "owner": "", "principal": "alice", "timeout": 600})
    key = tmp_path / "k.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxuV3uQmYYqiCDD0LtD2y5pzwqgMJLgQ3RvHOgs"
                   "3Ye1 alice@laptop\n")
    ok(data_dir, "user", "key", "add", "alice", "--file", key)
    ok(data_dir, "user", "app-password", "create", "alice", "--label", "NAS")
    ok(data_dir, "user", "rename", "alice", "alice.a")
    with pytest.raises(AuthFailed):
        app.auth.password_login("alice", PASSWORD, "test", "127.0.0.1")   # was remembered
    assert app.auth.password_login("alice.a", PASSWORD, "test").login == "alice.a"
    assert app.auth.ended_among({alice.principal.user_id: "alice"}) == \
        {alice.principal.user_id}, "live sessions under the old login must end"
    assert [g.get("user") for g in ok(data_dir, "acl", "list", "/acme/inbox", "--json")] == \
        ["alice.a"]
    assert len(ok(data_dir, "user", "key", "list", "alice.a", "--json")) == 1
    assert [p["label"] for p in ok(data_dir, "user", "app-password", "list", "alice.a",
                                   "--json")] == ["NAS"]
    assert [lock["user"] for lock in ok(data_dir, "locks", "list", "--json")] == ["alice.a"]
    # what 'alice' did is found under the new login too, and nothing else called alice
    logins = ok(data_dir, "audit", "list", "--user", "alice.a", "--action", "login", "--json")
    assert [(e["actor"], e["outcome"]) for e in logins] == [("alice", "ok"), ("alice.a", "ok")]
    assert [e["outcome"] for e in ok(data_dir, "audit", "list", "--user", "alice", "--action",
                                     "login", "--json")] == ["ok", "failed"]
    assert "from=alice to=alice.a" in [e["detail"] for e in ok(
        data_dir, "audit", "list", "--action", "user-rename", "--json")]


def test_user_remove_takes_everything_of_the_account_and_the_trail_keeps_the_login(
        app, data_dir, monkeypatch):
    monkeypatch.setattr(login, "RECHECK_SECONDS", 0)   # remembered logins: read again now
    alice = client_session(app, "acme", "alice")
    put(alice, "/a.txt", b"by alice")
    sam = staff(app)
    app.admin().grant("/acme", login="sam", rights="read,write")
    sam.lock("/acme/a.txt", {"depth": "0", "scope": "exclusive", "type": "write",
                             "owner": "", "principal": "sam", "timeout": 600})
    ok(data_dir, "user", "app-password", "create", "sam", "--label", "NAS")
    assert app.auth.password_login("sam", PASSWORD, "webdav").login == "sam"   # remembered
    with pytest.raises(AuthFailed):
        app.auth.password_login("sam", "wrong password", "test", "192.0.2.1")
    with app.db.read() as s:
        assert s.get(LoginThrottle, "login:sam") is not None
    out = ok(data_dir, "user", "remove", "sam", "--json")
    assert out["login"] == "sam" and out["grants_removed"] == 1
    with app.db.read() as s:
        assert s.get(LoginThrottle, "login:sam") is None
        assert s.scalars(select(AppPassword)).all() == []
    with pytest.raises(AuthFailed):
        app.auth.password_login("sam", PASSWORD, "webdav")
    assert [u["login"] for u in ok(data_dir, "user", "list", "--json")] == ["alice"]
    assert ok(data_dir, "acl", "list", "--user", "sam", "--json") == []
    assert ok(data_dir, "locks", "list", "--json") == []
    trail = ok(data_dir, "audit", "list", "--user", "sam", "--all", "--json")
    assert {"login", "lock"} <= {e["action"] for e in trail}
    removed = ok(data_dir, "audit", "list", "--action", "user-remove", "--json")
    assert removed[0]["detail"].startswith("login=sam role=staff")
    assert "no user named 'sam'" in error(data_dir, "user", "remove", "sam")
    assert admin_session(app).versions("/acme/a.txt")[0].author == "alice"


# -- libraries and folders -------------------------------------------------------------------

def test_library_list_and_remove(app, data_dir):
    client_session(app, "acme", "alice")
    ok(data_dir, "library", "add", "handbook")
    ok(data_dir, "library", "add", "empty", "--clients", "acme")
    assert ok(data_dir, "library", "list", "--json") == [
        {"name": "empty", "used_bytes": 0, "clients": ["acme"]},
        {"name": "handbook", "used_bytes": 0, "clients": "*"}]
    admin = admin_session(app)
    put(admin, "/handbook/guide.txt", b"v1")
    put(admin, "/handbook/guide.txt", b"v2")
    put(admin, "/handbook/gone.txt", b"deleted")
    admin.remove("/handbook/gone.txt")
    blobs = [app.provider.blob_path(v.blob_id) for v in _versions(app, "handbook")]
    assert len(blobs) == 3 and all(b.exists() for b in blobs)
    assert "holds 2 files or folders" in error(data_dir, "library", "remove", "handbook")
    assert "no library named 'acme'" in error(data_dir, "library", "remove", "acme")
    assert ok(data_dir, "library", "remove", "empty", "--json")["entries"] == 0
    out = ok(data_dir, "library", "remove", "handbook", "--with-files", "--json")
    assert (out["entries"], out["versions"]) == (2, 3)
    assert not any(b.exists() for b in blobs)
    assert ok(data_dir, "library", "list", "--json") == []
    alice = app.session(app.auth.password_login("alice", PASSWORD, "test"), "test")
    assert names(alice.list("/")) == ["@trash", "@versions"]
    ok(data_dir, "client", "add", "handbook")   # the name is free again
    assert [e["detail"] for e in ok(data_dir, "audit", "list", "--action", "library-remove",
                                    "--json")] == ["entries=0 versions=0",
                                                   "entries=2 versions=3"]
    assert ok(data_dir, "doctor", "--json")["ok"] is True


def _versions(app, tree):
    from strongroom.appliance.db.models import Client, Node, Version
    with app.db.read() as s:
        return list(s.scalars(select(Version).join(Node).join(Client, Client.id == Node.client_id)
                              .where(Client.name == tree)))


def test_folder_add_makes_the_readme_finer_grant_example_work(app, data_dir):
    alice = client_session(app, "acme", "alice")
    grant = ("acl", "grant", "/acme/inbox", "--client", "acme", "--rights", "read,write")
    assert "no folder /acme/inbox" in error(data_dir, *grant)
    ok(data_dir, "acl", "revoke", "/acme", "--client", "acme")
    ok(data_dir, "acl", "grant", "/acme", "--client", "acme", "--rights", "read")
    assert ok(data_dir, "folder", "add", "/acme/inbox").strip() == "folder /acme/inbox created"
    ok(data_dir, *grant)
    put(alice, "/inbox/scan.pdf", b"%PDF")
    assert "already exists" in error(data_dir, "folder", "add", "/acme/inbox")
    assert "parent folder does not exist" in error(data_dir, "folder", "add", "/acme/a/b")
    assert ok(data_dir, "folder", "add", "/acme/a/b", "--parents", "--json")["created"] == \
        ["/acme/a", "/acme/a/b"]
    assert ok(data_dir, "folder", "add", "/acme/a/b", "-p", "--json")["created"] == []
    assert "not a folder" in error(data_dir, "folder", "add", "/acme/inbox/scan.pdf/x", "-p")
    assert "inside a tree" in error(data_dir, "folder", "add", "/acme")
    assert "no such" in error(data_dir, "folder", "add", "/nope/x")
    made = ok(data_dir, "audit", "list", "--action", "mkdir", "--json")
    assert [(e["actor"], e["protocol"], e["path"]) for e in made] == [
        (f"admin:{invoker()}", "cli", "/acme/inbox"), (f"admin:{invoker()}", "cli", "/acme/a"),
        (f"admin:{invoker()}", "cli", "/acme/a/b")]


# -- the migration ---------------------------------------------------------------------------

def test_migration_0006_keeps_data_and_stops_at_names_that_differ_only_in_case(app, data_dir):
    alice = client_session(app, "acme", "alice")
    put(alice, "/kept.txt", b"kept")
    command.downgrade(migrate._config(app.db.engine), "0005")
    with app.db.write() as s:
        s.execute(text("INSERT INTO clients (name, used_bytes, wrapped_key, created_at, kind, "
                       "shared_with_all) SELECT 'ACME', 0, wrapped_key, 0, 'client', false "
                       "FROM clients WHERE name = 'acme'"))
        s.execute(text("INSERT INTO users (login, role, password_hash, disabled, created_at) "
                       "VALUES ('ALICE', 'staff', 'x', false, 0)"))
    app.close()
    for table in ("clients", "users"):
        line = error(data_dir, "client", "list")
        assert line.startswith("strongroom: error: cannot upgrade the database: ")
        assert ("acme, ACME" if table == "clients" else "alice, ALICE") in line, line
        fix = line[line.index("(e.g. ") + 6:line.index(") and start again")]
        assert fix.startswith(f"UPDATE {table} SET "), fix
        with app.db.write() as s:   # nothing changed: still at 0005, every row there
            assert s.scalar(text("SELECT version_num FROM alembic_version")) == "0005"
            assert s.scalar(text(f"SELECT count(*) FROM {table}")) == 2
            s.execute(text(fix))
    assert [c["name"] for c in ok(data_dir, "client", "list", "--json")] == ["ACME-2", "acme"]
    upgraded = App(data_dir)
    try:
        session = upgraded.session(upgraded.auth.password_login("alice", PASSWORD, "test"),
                                   "test")
        assert get(session, "/kept.txt") == b"kept"
        with pytest.raises(IntegrityError), upgraded.db.write() as s:   # the database itself
            s.execute(text("UPDATE clients SET name = 'Acme' WHERE name = 'ACME-2'"))
    finally:
        upgraded.close()
