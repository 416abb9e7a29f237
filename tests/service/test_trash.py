"""The @trash view in the service layer, on SQLite and PostgreSQL: deleted files and
folders appear where they were, open as they were, copy back out, and are seen only
with read rights on their original path; the view cannot be written."""
import pytest

from strongroom.appliance.errors import Denied, NotFound
from tests.support.sessions import admin_session, client_session, get, put, staff_session


def names(entries):
    return [e.name for e in entries]


def only(entries):
    (entry,) = entries
    return entry


@pytest.fixture
def acme(app):
    return client_session(app, "acme")


def test_a_deleted_file_shows_where_it_was_and_copies_back(acme):
    acme.mkdir("/docs")
    acme.mkdir("/untouched")
    put(acme, "/docs/Bericht März.pdf", b"first")
    put(acme, "/docs/Bericht März.pdf", b"second")
    put(acme, "/docs/keep.txt", b"keep")
    assert acme.list("/@trash") == []
    acme.remove("/docs/Bericht März.pdf")
    assert names(acme.list("/@trash")) == ["docs"]       # only folders leading to the trash
    item = only(acme.list("/@trash/docs"))               # live files are not trash
    assert item.name.endswith(" Bericht März.pdf") and not item.is_dir and item.size == 6
    assert acme.stat(item.path).size == 6
    assert get(acme, item.path) == b"second"
    acme.copy(item.path, "/docs/Bericht März.pdf")
    assert get(acme, "/docs/Bericht März.pdf") == b"second"
    assert names(acme.list("/")).count("@trash") == 1


def test_a_deleted_folder_opens_as_it_was(acme):
    acme.mkdir("/case")
    acme.mkdir("/case/sub")
    put(acme, "/case/sub/a.txt", b"a")
    put(acme, "/case/gone-earlier.txt", b"x")
    acme.remove("/case/gone-earlier.txt")
    acme.remove("/case", recursive=True)
    folder = only(acme.list("/@trash"))
    assert folder.is_dir and folder.name.endswith(" case")
    earlier, sub = acme.list(folder.path)  # and what was deleted from it before, as such
    assert earlier.name.endswith(" gone-earlier.txt") and sub.name == "sub"
    assert get(acme, earlier.path) == b"x"
    assert get(acme, f"{folder.path}/sub/a.txt") == b"a"
    acme.copy(folder.path, "/case")
    assert get(acme, "/case/sub/a.txt") == b"a"
    assert names(acme.list("/case")) == ["sub"]          # restored as it was


def test_copying_a_folder_on_the_way_copies_its_deleted_items(acme):
    acme.mkdir("/docs")
    put(acme, "/docs/a.txt", b"a")
    acme.remove("/docs/a.txt")
    item = only(acme.list("/@trash/docs")).name
    acme.copy("/@trash/docs", "/everything-deleted-from-docs")
    assert get(acme, f"/everything-deleted-from-docs/{item}") == b"a"


def test_the_same_name_deleted_twice_is_two_items(acme):
    for data in (b"one", b"two"):
        put(acme, "/note.txt", data)
        acme.remove("/note.txt")
    items = acme.list("/@trash")
    assert len(items) == 2 and {get(acme, e.path) for e in items} == {b"one", b"two"}


def test_a_file_moved_over_another_leaves_only_the_replaced_one(acme):
    put(acme, "/a.txt", b"a")
    put(acme, "/b.txt", b"b")
    acme.rename("/a.txt", "/b.txt", overwrite=True)     # b keeps its history; a's row is empty
    assert acme.list("/@trash") == []


@pytest.mark.parametrize("name", ["2026-01-01 00-00-00 d1 x.txt", "x.txt", "nothing",
                                  "2026-01-01 00-00-00 d99999999999 x.txt",
                                  "2026-01-01 00-00-00 d" + "9" * 25 + " x.txt"])
def test_names_that_are_not_in_the_trash_are_not_found(acme, name):
    put(acme, "/x.txt", b"live")
    with pytest.raises(NotFound):
        acme.stat(f"/@trash/{name}")
    with pytest.raises(NotFound):
        acme.stat(f"/@versions/x.txt/{name.replace(' d', ' v')}")


@pytest.mark.parametrize("op", [
    lambda s, item: put(s, "/@trash/new.txt", b"x"),
    lambda s, item: s.mkdir("/@trash/new"),
    lambda s, item: s.remove(item.path),
    lambda s, item: s.rename(item.path, "/back.txt"),
    lambda s, item: s.copy("/live.txt", "/@trash/copy.txt"),
    lambda s, item: s.remove("/@trash", recursive=True),
])
def test_the_view_cannot_be_written(acme, op):
    put(acme, "/live.txt", b"live")
    put(acme, "/gone.txt", b"gone")
    acme.remove("/gone.txt")
    item = only(acme.list("/@trash"))
    with pytest.raises(Denied):
        op(acme, item)
    assert get(acme, item.path) == b"gone"


def test_the_trash_shows_only_what_the_rights_reach(app, acme):
    for folder in ("/inbox", "/private"):
        acme.mkdir(folder)
        put(acme, f"{folder}/f.txt", folder.encode())
        acme.remove(f"{folder}/f.txt")
    private = only(acme.list("/@trash/private")).name
    sam = staff_session(app)
    app.admin().grant("/acme/inbox", login="sam", rights="read")
    assert names(sam.list("/acme/@trash")) == ["inbox"]
    assert get(sam, only(sam.list("/acme/@trash/inbox")).path) == b"/inbox"
    for path in ("/acme/@trash/private", f"/acme/@trash/private/{private}"):
        with pytest.raises(NotFound):
            sam.stat(path)
    # the version view keeps names outside the grants hidden the same way
    assert names(sam.list("/acme/@versions")) == ["inbox"]


def test_another_client_never_sees_the_trash(app, acme):
    put(acme, "/secret.txt", b"s")
    acme.remove("/secret.txt")
    beta = client_session(app, "beta")
    assert beta.list("/@trash") == []
    item = only(admin_session(app).list("/acme/@trash"))
    with pytest.raises(NotFound):
        beta.stat(f"/@trash/{item.name}")
