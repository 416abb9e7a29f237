"""One path style for the admin, and no silent traps: the real CLI against a real data
directory. Full tree paths (/<client>/... and /<library>/...) work for versions, trash
and acl alike; a trash item is also named by its id alone; bare durations, rights in
any form but names, and audit filters that can match nothing are refused in one line."""
import json
import subprocess
import sys
import time

import pytest

from tests.support.sessions import get, put

pytestmark = pytest.mark.slow     # a long module: started first (tests/conftest.py)

TRAP = "90d, 12h, 30m"     # how a refused duration shows the accepted forms


def cli(data_dir, *args):
    return subprocess.run([sys.executable, "-m", "strongroom.appliance.cli", *args, "--data-dir",
                           str(data_dir)], capture_output=True, text=True, timeout=120)


def ok(data_dir, *args):
    r = cli(data_dir, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def as_json(data_dir, *args):
    return json.loads(ok(data_dir, *args, "--json"))


class Tree:
    """The appliance's files, through the administrator's Session in this process."""

    def __init__(self, data_dir):
        from strongroom.appliance.app import App
        from strongroom.appliance.service import ADMIN
        self.app = App(data_dir)
        self.session = self.app.session(ADMIN, "test")

    def __enter__(self):
        return self.session

    def __exit__(self, *exc):
        self.app.close()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A client acme with alice, a staff user sam and a library handbook, each with a
    file written twice, and one file of each deleted."""
    d = tmp_path_factory.mktemp("paths") / "data"
    ok(d, "init", "--host", "127.0.0.1", "--webdav-port", "0", "--sftp-port", "0")
    ok(d, "client", "add", "acme")
    ok(d, "library", "add", "handbook")
    ok(d, "user", "add", "alice", "--client", "acme", "--no-totp")
    ok(d, "user", "add", "sam", "--staff", "--no-totp")
    with Tree(d) as tree:
        for root in ("/acme", "/handbook"):
            tree.mkdir(f"{root}/reports")
            for n in (1, 2):
                put(tree, f"{root}/reports/q3.pdf", f"{root} version {n}".encode())
                put(tree, f"{root}/reports/q{n}-old.pdf", f"{root} old {n}".encode())
            tree.remove(f"{root}/reports/q1-old.pdf")
            tree.remove(f"{root}/reports/q2-old.pdf")
    return d


def refused(data_dir, *args, says: str):
    r = cli(data_dir, *args)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.startswith("strongroom: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert says in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    return r.stderr


@pytest.mark.parametrize("root", ["/acme", "/handbook"])
def test_versions_take_full_tree_paths(data_dir, root):
    rows = as_json(data_dir, "versions", "list", f"{root}/reports/q3.pdf")
    assert [r["current"] for r in rows] == [False, True]
    out = ok(data_dir, "versions", "restore", f"{root}/reports/q3.pdf", str(rows[0]["id"]))
    assert out.strip() == f"restored version {rows[0]['id']} of {root}/reports/q3.pdf"
    with Tree(data_dir) as tree:
        assert get(tree, f"{root}/reports/q3.pdf") == f"{root} version 1".encode()


def test_trash_lists_full_paths_and_ids(data_dir):
    everything = as_json(data_dir, "trash", "list")
    assert {r["original"] for r in everything} >= {
        "/acme/reports/q1-old.pdf", "/acme/reports/q2-old.pdf",
        "/handbook/reports/q1-old.pdf", "/handbook/reports/q2-old.pdf"}
    for r in everything:
        assert r["id"].startswith("d") and f" {r['id']} " in r["item"]
        assert r["item"].startswith(r["original"].split("/reports/")[0] + "/@trash/reports/")
    acme = as_json(data_dir, "trash", "list", "/acme")
    assert acme and {r["original"].split("/")[1] for r in acme} == {"acme"}
    assert as_json(data_dir, "trash", "list", "/acme/reports") == acme
    assert as_json(data_dir, "trash", "list", "/acme/elsewhere") == []
    human = ok(data_dir, "trash", "list", "/handbook").splitlines()
    assert human[0].split()[:2] == ["ID", "DELETED"] and len(human) == 3


@pytest.mark.parametrize("root, by", [("/acme", "id"), ("/handbook", "item")])
def test_trash_restore_by_id_or_by_path(data_dir, root, by):
    (row,) = [r for r in as_json(data_dir, "trash", "list", root)
              if r["original"] == f"{root}/reports/q1-old.pdf"]
    out = ok(data_dir, "trash", "restore", row[by])
    assert out.strip() == f"restored {row[by]} to {root}/reports/q1-old.pdf"
    with Tree(data_dir) as tree:
        assert get(tree, f"{root}/reports/q1-old.pdf") == f"{root} old 1".encode()


def test_trash_restore_to_a_full_path(data_dir):
    (row,) = [r for r in as_json(data_dir, "trash", "list", "/acme")
              if r["original"] == "/acme/reports/q2-old.pdf"]
    ok(data_dir, "trash", "restore", row["id"], "--to", "/acme/q2-back.pdf")
    with Tree(data_dir) as tree:
        assert get(tree, "/acme/q2-back.pdf") == b"/acme old 2"


def test_acl_takes_the_same_paths(data_dir):
    out = as_json(data_dir, "acl", "grant", "/acme/reports", "--user", "alice",
                  "--rights", "read,write,manage")
    assert out == {"path": "/acme/reports", "user": "alice",
                   "rights": "read,write,manage"}
    assert [g["user"] for g in as_json(data_dir, "acl", "list", "/acme/reports")] == ["alice"]
    ok(data_dir, "acl", "grant", "/handbook/reports", "--user", "sam", "--rights", "write")
    assert as_json(data_dir, "acl", "revoke", "/acme/reports", "--user", "alice",
                   "--rights", "manage, delete")["rights"] == "read,write"
    for login, action, path, verdict in [
            ("alice", "write", "/acme/reports/q3.pdf", "allowed"),
            ("alice", "read", "/handbook/reports/q3.pdf", "allowed"),
            ("alice", "write", "/handbook/reports/q3.pdf", "denied"),
            ("alice", "read", "/acme/@versions/reports/q3.pdf", "allowed"),
            ("sam", "write", "/handbook/reports/q3.pdf", "allowed"),
            ("sam", "read", "/acme/reports/q3.pdf", "not found")]:
        out = as_json(data_dir, "acl", "check", login, action, path)
        assert out["verdict"] == verdict, (login, action, path, out)


def test_acl_check_of_another_clients_path_is_not_found(data_dir):
    ok(data_dir, "client", "add", "beta")
    out = as_json(data_dir, "acl", "check", "alice", "read", "/beta")
    assert out["verdict"] == "not found" and out["seen_as"] is None


@pytest.mark.parametrize("args, says", [
    (("versions", "list", "/reports/q3.pdf"), "no such client or library: reports"),
    (("versions", "restore", "/nope/q3.pdf", "1"), "no such client or library: nope"),
    (("versions", "list", "/"), "a full tree path"),
    (("trash", "list", "/nope"), "no such client or library: nope"),
    (("trash", "restore", "/@trash/reports/x.pdf"), "no such client or library: @trash"),
    (("trash", "restore", "/acme/reports/q3.pdf"), "not an item of the trash"),
    (("trash", "restore", "d99999"), "not an item of the trash: d99999"),
    (("trash", "restore", "17"), "not an item of the trash: 17"),
    (("trash", "restore", "d1", "--to", "/reports/x.pdf"), "no such client or library"),
    (("acl", "grant", "/nope", "--user", "sam", "--rights", "read"),
     "no such client or library: nope"),
    (("acl", "list", "/nope"), "no such client or library: nope"),
    (("acl", "check", "alice", "read", "/reports/q3.pdf"), "no such client or library: reports"),
    (("acl", "grant", "/acme", "--user", "alice", "--rights", "rwd"),
     "read, write, delete, manage"),
    (("acl", "grant", "/acme", "--user", "alice", "--rights", "read,list"),
     "unknown right 'list'"),
    (("acl", "grant", "/acme", "--user", "alice", "--rights", "read write"),
     "comma-separated"),
    (("acl", "revoke", "/acme", "--client", "acme", "--rights", "d"), "unknown right 'd'"),
    (("user", "app-password", "create", "alice", "--label", "nas", "--expires", "90"), TRAP),
    (("user", "app-password", "create", "alice", "--label", "nas", "--expires", "1.5"), TRAP),
    (("user", "app-password", "create", "alice", "--label", "nas", "--expires", "0d"),
     "longer than zero"),
    (("audit", "list", "--since", "90"), "'24h' or '7d'"),
    (("audit", "list", "--action", "frobnicate"), "no such audit action: frobnicate"),
    (("audit", "list", "--user", "nobody"), "nobody"),
])
def test_traps_are_refused_in_one_line(data_dir, args, says):
    refused(data_dir, *args, says=says)


def test_the_old_client_option_is_gone(data_dir):
    r = cli(data_dir, "versions", "list", "/acme/reports/q3.pdf", "--client", "acme")
    assert r.returncode == 2 and "No such option '--client'" in r.stderr
    assert "/acme/acme" not in r.stderr + r.stdout


def test_durations_with_a_unit_are_taken(data_dir):
    out = as_json(data_dir, "user", "app-password", "create", "alice", "--label", "tablet",
                  "--expires", "90d")
    assert abs(out["expires_at"] - (time.time() + 90 * 86400)) < 60
    out = as_json(data_dir, "user", "app-password", "create", "alice", "--label", "phone",
                  "--expires", "12h")
    assert abs(out["expires_at"] - (time.time() + 12 * 3600)) < 60
    assert as_json(data_dir, "audit", "list", "--since", "1h", "--action", "app-password-create")


def test_audit_filters_take_what_can_match(data_dir):
    """A known action or login with no events is an empty list, not an error; so is an
    actor that is no user (the CLI's admin, a login name someone tried)."""
    assert as_json(data_dir, "audit", "list", "--action", "lock-clear") == []
    assert as_json(data_dir, "audit", "list", "--user", "sam") == []
    from strongroom.appliance.cli.owner import invoker
    assert as_json(data_dir, "audit", "list", "--user", f"admin:{invoker()}",
                   "--action", "client-add")
