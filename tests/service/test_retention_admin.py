"""Retention's admin side (issue 14) through the real CLI (click's runner, in process),
on SQLite and PostgreSQL: a client's own retention options (`client set --retention`,
shown by `client show`, read by retention_rules.policy), pinning versions
(`versions pin|unpin`, shown by `versions list`), and the usage numbers of `client
list/show` (current files, older versions, trash)."""
import json

import pytest
from click.testing import CliRunner

from strongroom.appliance.cli import main
from strongroom.appliance.db import repo
from strongroom.appliance.db.models import AuditEvent, Client
from strongroom.appliance.service import retention_rules as rr
from tests.support.sessions import admin_session, client_session, put

D = 86400.0


def run(app, *args):
    return CliRunner().invoke(main, [*map(str, args), "--data-dir", str(app.config.data_dir)])


def ok(app, *args):
    r = run(app, *args)
    assert r.exit_code == 0, (args, r.stderr, r.exception)
    return json.loads(r.stdout) if "--json" in args else r.stdout


def error(app, *args) -> str:
    r = run(app, *args)
    assert r.exit_code == 1, (args, r.exit_code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("strongroom: error: "), r.stderr
    return lines[0]


def stored(app, name="acme"):
    with app.db.read() as s:
        return repo.client_by_name(s, name).retention


def events(app, action):
    with app.db.read() as s:
        return [(e.path, e.detail) for e in s.query(AuditEvent).filter_by(action=action)
                .order_by(AuditEvent.id)]


def own(shown):
    return {name: option for name, option in shown["retention"].items() if option["own"]}


def test_a_clients_own_retention_is_set_shown_and_applied(app):
    app.admin().add_client("acme")
    shown = ok(app, "client", "show", "acme", "--json")
    assert shown["retention"] == {
        "keep_all": {"seconds": 2 * D, "own": False}, "max_age": {"seconds": None, "own": False},
        "max_versions": {"count": None, "own": False},
        "trash_days": {"seconds": 30 * D, "own": False},
        "history_quota": {"bytes": None, "own": False}}
    ok(app, "client", "set", "acme", "--retention", "keep_all=7d,max_versions=20,"
       "history_quota=5GiB,max_age=none")
    assert own(ok(app, "client", "show", "acme", "--json")) == {
        "keep_all": {"seconds": 7 * D, "own": True}, "max_age": {"seconds": None, "own": True},
        "max_versions": {"count": 20, "own": True},
        "history_quota": {"bytes": 5 * 1024**3, "own": True}}
    assert rr.policy(app.config, stored(app)) == rr.Policy(7 * D, None, 20, 30 * D,
                                                           5 * 1024**3, 900.0)
    human = ok(app, "client", "show", "acme")
    assert "  keep_all       7d (its own)" in human.splitlines()
    assert "  trash_days     30d" in human.splitlines()
    assert "  history_quota  5.0 GiB (5368709120 bytes) (its own)" in human.splitlines()
    # options not named stay; OPTION=default drops one; 'default' drops them all
    ok(app, "client", "set", "acme", "--retention", "trash_days=12h,max_versions=default")
    assert set(own(ok(app, "client", "show", "acme", "--json"))) == {
        "keep_all", "max_age", "history_quota", "trash_days"}
    ok(app, "client", "set", "acme", "--retention", "default")
    assert stored(app) is None and own(ok(app, "client", "show", "acme", "--json")) == {}
    details = [d for _p, d in events(app, "client-set")]
    assert details[0] == ('retention={"history_quota": 5368709120, "keep_all": 604800.0, '
                          '"max_age": null, "max_versions": 20}')
    assert details[-1] == "retention=default"


@pytest.mark.parametrize("spec, says", [
    ("keep_all=0d", "retention option keep_all: expected a duration longer than zero"),
    ("keep_all=-2d", "retention option keep_all: expected a duration with a unit"),
    ("keep_all=7", "retention option keep_all: expected a duration with a unit"),
    ("max_versions=0", "retention option max_versions: expected a positive integer"),
    ("history_quota=5", "retention option history_quota: expected a size with its unit"),
    ("trash_days=none", "retention option trash_days cannot be none"),
    ("interval=1h", "unknown retention option 'interval'"),
    ("keep_all 7d", "expected OPTION=VALUE pairs"),
    ("keep_all=7d,keep_all=8d", "retention option keep_all is given twice"),
])
def test_a_bad_retention_spec_is_one_line_and_changes_nothing(app, spec, says):
    app.admin().add_client("acme")
    ok(app, "client", "set", "acme", "--retention", "max_versions=5")
    before = (stored(app), len(events(app, "client-set")))
    assert says in error(app, "client", "set", "acme", "--retention", spec, "--quota", "1GiB")
    assert (stored(app), len(events(app, "client-set"))) == before
    assert ok(app, "client", "show", "acme", "--json")["quota_bytes"] is None


def test_stored_retention_that_cannot_be_read_is_one_line_until_reset(app):
    app.admin().add_client("acme")
    with app.db.write() as s:
        repo.client_by_name(s, "acme").retention = '{"keep_all": "soon"}'
    assert "--retention default' resets it" in error(app, "client", "show", "acme")
    ok(app, "client", "set", "acme", "--retention", "default")
    assert stored(app) is None


def test_pin_and_unpin(app):
    acme = client_session(app, "acme")
    acme.mkdir("/docs")
    first = put(acme, "/docs/a.txt", b"one").version_id
    put(acme, "/docs/a.txt", b"two")
    listed = ok(app, "versions", "list", "/acme/docs/a.txt", "--json")
    assert [(v["id"] == first, v["pinned"]) for v in listed] == [(True, False), (False, False)]
    assert ok(app, "versions", "pin", "/acme/docs/a.txt", first, "--json") == {
        "path": "/acme/docs/a.txt", "version": first, "pinned": True, "changed": True}
    listed = ok(app, "versions", "list", "/acme/docs/a.txt", "--json")
    assert [v["pinned"] for v in listed] == [True, False]
    assert "(pinned)" in ok(app, "versions", "list", "/acme/docs/a.txt").splitlines()[1]
    assert "was already pinned" in ok(app, "versions", "pin", "/acme//docs/a.txt", first)
    assert ok(app, "versions", "unpin", "/acme/docs/a.txt", first).strip() == \
        f"version {first} of /acme/docs/a.txt unpinned"
    assert [v["pinned"] for v in ok(app, "versions", "list", "/acme/docs/a.txt", "--json")] \
        == [False, False]
    assert events(app, "version-pin") == [("/acme/docs/a.txt", f"version {first}"),
                                          ("/acme/docs/a.txt", f"version {first} (already so)")]
    assert events(app, "version-unpin") == [("/acme/docs/a.txt", f"version {first}")]


def test_pin_refuses_what_is_not_a_version_of_that_file(app):
    acme = client_session(app, "acme")
    acme.mkdir("/docs")
    mine = put(acme, "/docs/a.txt", b"one").version_id
    other = put(acme, "/docs/b.txt", b"two").version_id
    assert f"no version {other} of /acme/docs/a.txt" in error(
        app, "versions", "pin", "/acme/docs/a.txt", other)
    assert "no version 99999 of" in error(app, "versions", "pin", "/acme/docs/a.txt", 99999)
    assert "/docs/nope.txt" in error(app, "versions", "pin", "/acme/docs/nope.txt", mine)
    assert "folder" in error(app, "versions", "unpin", "/acme/docs", mine)
    assert "no such client or library: nobody" in error(app, "versions", "pin",
                                                         "/nobody/a.txt", mine)
    assert "full tree path" in error(app, "versions", "pin", "/", mine)
    assert events(app, "version-pin") == [] and events(app, "version-unpin") == []
    with app.db.read() as s:
        assert s.query(Client).count() == 1


def test_usage_counts_current_files_older_versions_and_trash_apart(app):
    acme = client_session(app, "acme")
    client_session(app, "beta")
    acme.mkdir("/docs")
    put(acme, "/docs/a.txt", b"x" * 10)
    put(acme, "/docs/a.txt", b"x" * 20)           # 10 bytes of history
    put(acme, "/docs/b.txt", b"x" * 5)
    put(acme, "/docs/b.txt", b"x" * 7)            # 5 more
    acme.mkdir("/case")
    acme.mkdir("/case/sub")
    put(acme, "/case/sub/c.txt", b"x" * 3)
    put(acme, "/case/sub/c.txt", b"x" * 4)        # trash: 7, once the folder goes
    put(acme, "/case/early.txt", b"x" * 11)
    acme.remove("/case/early.txt")               # deleted, then its folder too: once
    acme.remove("/case", recursive=True)
    put(acme, "/gone.bin", b"x" * 100)
    acme.remove("/gone.bin")
    put(acme, "/moved.txt", b"x" * 13)
    acme.rename("/moved.txt", "/docs/b.txt", overwrite=True)  # b's history: 5 + 7
    expected = {"used_bytes": 20 + 13, "history_bytes": 10 + 5 + 7,
                "trash_bytes": 7 + 11 + 100}
    listed = {c["name"]: c for c in ok(app, "client", "list", "--json")}
    assert {k: listed["acme"][k] for k in expected} == expected
    assert {k: listed["beta"][k] for k in expected} == dict.fromkeys(expected, 0)
    shown = ok(app, "client", "show", "acme", "--json")
    assert {k: shown[k] for k in expected} == expected
    assert "older versions 22 bytes, trash 118 bytes" in ok(app, "client", "show", "acme")
    row = [line.split() for line in ok(app, "client", "list").splitlines()
           if line.startswith("acme")][0]
    assert row[:7] == ["acme", "33", "B", "22", "B", "118", "B"]
    # the views agree with the numbers: what is listed under @trash is what is counted
    assert admin_session(app).list("/acme/@trash")
