"""A WebDAV lock is a service-layer fact (issue 18), on SQLite and PostgreSQL: while one
user holds a lock, every other user's write through the Session (an upload, a rename from
or onto the path, a delete, a copy onto it, a new name inside a locked folder) is refused
with Locked, whatever the protocol; the lock's own user may still write (WebDAV asks them
for the token besides). A lock follows its file when its owner renames it (or a folder
above it) and ends when the file is deleted."""
import pytest

from strongroom.appliance.errors import Conflict, Locked
from tests.support.sessions import admin_session, client_session, get, put


@pytest.fixture
def alice(app):
    return client_session(app, "acme", "alice")


@pytest.fixture
def bob(app, alice):
    return client_session(app, "acme", "bob", create_client=False)


def lock(session, path: str, depth: str = "infinity") -> dict:
    """A write lock of `session`'s user on `path`, as wsgidav asks for one."""
    return session.lock(path, {"type": "write", "scope": "exclusive", "depth": depth,
                               "owner": b"<D:owner>test</D:owner>", "timeout": 600,
                               "principal": session.principal.login})


def roots(session) -> list[str]:
    return sorted(lk["root"] for lk in session.locks_below("/"))


def test_another_users_upload_is_refused_the_owners_goes_through(alice, bob):
    put(alice, "/a.txt", b"alice 1")
    lock(alice, "/a.txt")
    with pytest.raises(Locked, match="locked by another user: /a.txt"):
        put(bob, "/a.txt", b"bob")
    put(alice, "/a.txt", b"alice 2")
    assert get(bob, "/a.txt") == b"alice 2" and len(alice.versions("/a.txt")) == 2


def test_a_lock_taken_during_an_upload_refuses_its_commit(alice, bob):
    put(alice, "/a.txt", b"alice")
    upload = bob.open_write("/a.txt")
    try:
        upload.append(b"bob's bytes")
        lock(alice, "/a.txt")
        with pytest.raises(Locked):
            upload.commit()
    finally:
        upload.abort()
    assert get(alice, "/a.txt") == b"alice" and len(alice.versions("/a.txt")) == 1


def test_another_users_rename_and_delete_are_refused(alice, bob):
    put(alice, "/a.txt", b"alice")
    put(bob, "/c.txt", b"bob")
    lock(alice, "/a.txt")
    with pytest.raises(Locked):
        bob.rename("/a.txt", "/b.txt")
    with pytest.raises(Locked):
        bob.rename("/c.txt", "/a.txt", overwrite=True)   # onto it
    with pytest.raises(Locked):
        bob.copy("/c.txt", "/a.txt", overwrite=True)
    with pytest.raises(Locked):
        bob.remove("/a.txt")
    assert get(bob, "/a.txt") == b"alice" and get(bob, "/c.txt") == b"bob"
    assert roots(alice) == ["/a.txt"]


def test_the_administrator_is_another_user_too(app, alice):
    put(alice, "/a.txt", b"alice")
    lock(alice, "/a.txt")
    with pytest.raises(Locked):
        put(admin_session(app), "/acme/a.txt", b"admin")


def test_a_lock_follows_its_owners_rename_and_ends_with_the_file(alice, bob):
    put(alice, "/a.txt", b"alice")
    lock(alice, "/a.txt")
    alice.rename("/a.txt", "/b.txt")
    assert roots(alice) == ["/b.txt"]
    with pytest.raises(Locked):
        put(bob, "/b.txt", b"bob")
    put(bob, "/a.txt", b"bob's own")            # the old name is free
    alice.mkdir("/g")
    alice.rename("/b.txt", "/g/b.txt")
    alice.rename("/g", "/h")                    # a folder above it
    assert roots(alice) == ["/h/b.txt"]
    with pytest.raises(Locked):
        bob.rename("/h", "/i")                  # it holds a file locked by another user
    with pytest.raises(Locked):
        bob.remove("/h", recursive=True)
    alice.remove("/h/b.txt")
    assert roots(alice) == []
    put(bob, "/h/b.txt", b"free again")


def test_a_folder_replaced_by_a_rename_takes_its_locks_along(alice, bob):
    alice.mkdir("/old")
    put(alice, "/old/x.txt", b"x")
    lock(alice, "/old/x.txt")
    alice.mkdir("/new")
    alice.rename("/new", "/old", overwrite=True, replace=True)
    assert roots(alice) == []
    put(bob, "/old/x.txt", b"bob")


def test_a_folder_locked_with_depth_infinity_covers_what_is_in_it(alice, bob):
    alice.mkdir("/f")
    put(alice, "/f/in.txt", b"in")
    put(bob, "/out.txt", b"out")
    lock(alice, "/f")
    for refused in (lambda: bob.mkdir("/f/sub"), lambda: put(bob, "/f/new.txt", b"new"),
                    lambda: put(bob, "/f/in.txt", b"over"),
                    lambda: bob.copy("/out.txt", "/f/copy.txt"),
                    lambda: bob.rename("/out.txt", "/f/out.txt"),
                    lambda: bob.rename("/f/in.txt", "/in.txt")):
        with pytest.raises(Locked):
            refused()
    alice.mkdir("/f/sub")
    put(alice, "/f/sub/deep.txt", b"deep")
    assert sorted(e.name for e in bob.list("/f")) == ["in.txt", "sub"]


def test_a_folder_locked_with_depth_0_keeps_its_names_not_its_files(alice, bob):
    alice.mkdir("/f")
    put(alice, "/f/in.txt", b"in")
    lock(alice, "/f", depth="0")
    with pytest.raises(Locked):
        put(bob, "/f/new.txt", b"new")          # a new name in it
    with pytest.raises(Locked):
        bob.remove("/f/in.txt")                 # a name gone from it
    put(bob, "/f/in.txt", b"over")              # a file in it changes
    assert get(alice, "/f/in.txt") == b"over"


def test_a_refusal_is_a_conflict_to_an_adapter_that_does_not_know_locks(alice, bob):
    put(alice, "/a.txt", b"alice")
    lock(alice, "/a.txt")
    with pytest.raises(Conflict):
        bob.remove("/a.txt")
