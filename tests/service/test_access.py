"""Rights and views in the service layer, on SQLite and PostgreSQL: staff see only
granted clients, grants follow renamed folders, libraries are read-only for
clients, and grants cannot cross client boundaries."""
import time

import pytest

from strongroom.appliance.app import App
from strongroom.appliance.errors import BadRequest, Denied, NotFound, QuotaExceeded
from strongroom.appliance.service import access
from tests.support.sessions import admin_session, client_session, get, put, staff_session


def names(entries):
    return sorted(e.name for e in entries)


def test_staff_see_only_granted_clients_and_the_way_to_granted_folders(app):
    alice = client_session(app, "acme")
    client_session(app, "beta")
    put(alice, "/top.txt", b"top")
    alice.mkdir("/inbox")
    put(alice, "/inbox/in.txt", b"in")
    sam = staff_session(app)
    assert names(sam.list("/")) == []
    with pytest.raises(NotFound):
        sam.list("/acme")
    app.admin().grant("/acme/inbox", login="sam", rights="read")
    assert names(sam.list("/")) == ["acme"]
    assert names(sam.list("/acme")) == ["@trash", "@versions", "inbox"]
    assert get(sam, "/acme/inbox/in.txt") == b"in"
    with pytest.raises(NotFound):
        get(sam, "/acme/top.txt")
    with pytest.raises(Denied):
        put(sam, "/acme/inbox/new.txt", b"x")


def test_grants_follow_a_renamed_folder(app):
    alice = client_session(app, "acme")
    alice.mkdir("/inbox")
    sam = staff_session(app)
    app.admin().grant("/acme/inbox", login="sam", rights="read,write")
    admin_session(app).rename("/acme/inbox", "/acme/Eingang")
    put(sam, "/acme/Eingang/from-staff.txt", b"hello")
    assert app.admin().list_grants(login="sam") == [
        {"path": "/acme/Eingang", "user": "sam", "rights": "read,write"}]


def test_library_is_read_only_for_clients_and_writable_for_granted_staff(app):
    alice = client_session(app, "acme")
    bob = client_session(app, "beta")
    app.admin().add_library("handbook", ["acme"])
    sam = staff_session(app)
    app.admin().grant("/handbook", login="sam", rights="read,write")
    put(sam, "/handbook/guide.txt", b"how to")
    assert "handbook" in names(alice.list("/"))
    assert get(alice, "/handbook/guide.txt") == b"how to"
    with pytest.raises(Denied):
        put(alice, "/handbook/mine.txt", b"x")
    with pytest.raises(Denied):
        alice.remove("/handbook/guide.txt")
    assert "handbook" not in names(bob.list("/"))       # not shared with beta
    with pytest.raises(NotFound):
        get(bob, "/handbook/guide.txt")
    alice.copy("/handbook/guide.txt", "/my-copy.txt")   # copying out is reading
    assert get(alice, "/my-copy.txt") == b"how to"


def test_grants_never_cross_clients(app):
    client_session(app, "acme")
    client_session(app, "beta")
    with pytest.raises(BadRequest):
        app.admin().grant("/acme", login="beta-user", rights="read")
    with pytest.raises(BadRequest):
        app.admin().grant("/acme", client="beta", rights="read")
    with pytest.raises(NotFound):
        app.admin().grant("/acme/missing", client="acme", rights="read")
    with pytest.raises(BadRequest):
        app.admin().grant("/acme", client="acme", rights="fly")


def test_revoking_the_default_grant_leaves_nothing(app):
    alice = client_session(app, "acme")
    put(alice, "/a.txt", b"a")
    app.admin().revoke("/acme", client="acme")
    with pytest.raises(NotFound):
        get(alice, "/a.txt")
    app.admin().grant("/acme", client="acme", rights="read")
    assert get(alice, "/a.txt") == b"a"
    with pytest.raises(Denied):
        alice.remove("/a.txt")
    assert alice.check("delete", "/a.txt") == "denied"
    assert alice.check("read", "/a.txt") == "allowed"
    assert alice.check("read", "/nope.txt") == "not found"


def test_a_change_from_another_process_reaches_open_sessions_within_the_ttl(app, monkeypatch):
    """An SFTP session remembers grants briefly (session.access.ACCESS_TTL); the CLI
    is another process, whose changes this process cannot see being made."""
    monkeypatch.setattr(access, "ACCESS_TTL", 0.3)
    alice = client_session(app, "acme")
    put(alice, "/a.txt", b"a")
    assert get(alice, "/a.txt") == b"a"
    other = App(app.data_dir)
    try:
        other.admin().revoke("/acme", client="acme")
    finally:
        other.close()
    time.sleep(0.35)
    with pytest.raises(NotFound):
        get(alice, "/a.txt")


def test_quota_counts_uploads_of_the_same_session_at_once(app):
    alice = client_session(app, "acme", quota=10)
    put(alice, "/a.txt", b"123456")
    with pytest.raises(QuotaExceeded):
        put(alice, "/b.txt", b"123456")
