"""How editors save, replayed through Session calls on SQLite and PostgreSQL: the saved
file keeps its whole version history, the trash holds no copy of it, litter keeps only
its latest content, and nothing is joined that a user kept apart
(appliance.service.saving)."""
import pytest

from strongroom.appliance.db import repo
from strongroom.appliance.errors import NotFound
from strongroom.appliance.service import saving
from tests.support.sessions import client_session, get, put

OLD = [b"first draft", b"second draft"]
NEW = b"third draft, saved by the editor"


@pytest.fixture
def acme(app):
    return client_session(app, "acme")


def history(session, path):
    """The contents of every version of `path`, oldest first; the last is current."""
    versions = session.versions(path)
    assert [v.current for v in versions] == [False] * (len(versions) - 1) + [True]
    return [get(session, path, v.id) for v in versions]


def live_names(session, folder="/"):
    return sorted(e.name for e in session.list(folder) if not e.name.startswith("@"))


def trash_contents(session):
    """What every item in the trash holds (files directly in the top folder)."""
    return [get(session, e.path) for e in session.list("/@trash")]


def written(session, path, *contents):
    for data in contents:
        put(session, path, data)


def used(app, client="acme"):
    with app.db.read() as s:
        return repo.used_bytes(s, repo.client_by_name(s, client).id)


def word_save(s, name, content):
    """MS Word over WebDAV (the Windows mini-redirector): the owner file, the new
    content under a temporary name, the document moved away, the temporary moved onto
    its name, the old document deleted (WebDAV MOVE replaces, DELETE is recursive)."""
    put(s, f"/~${name}", b"owner: alice")
    put(s, "/~WRD0000.tmp", content)
    s.rename(f"/{name}", "/~WRL0001.tmp", overwrite=True, replace=True)
    s.rename("/~WRD0000.tmp", f"/{name}", overwrite=True, replace=True)
    s.remove("/~WRL0001.tmp", recursive=True)
    s.remove(f"/~${name}", recursive=True)


def test_word_keeps_the_history_and_leaves_no_copy_in_the_trash(app, acme):
    written(acme, "/doc.docx", *OLD)
    word_save(acme, "doc.docx", NEW)
    assert history(acme, "/doc.docx") == OLD + [NEW]
    assert live_names(acme) == ["doc.docx"]
    assert trash_contents(acme) == [b"owner: alice"]     # the owner file, like any deletion
    assert used(app) == len(NEW)
    word_save(acme, "doc.docx", b"fourth")                  # and again: one history grows
    assert history(acme, "/doc.docx") == OLD + [NEW, b"fourth"]
    assert trash_contents(acme) == [b"owner: alice"] * 2


def test_libreoffice_moves_a_temporary_file_onto_the_name(acme):
    written(acme, "/doc.odt", *OLD)
    put(acme, "/.~lock.doc.odt#", b"lock")
    put(acme, "/lu1234abcd.tmp", NEW)
    acme.rename("/lu1234abcd.tmp", "/doc.odt", overwrite=True, replace=True)
    acme.remove("/.~lock.doc.odt#", recursive=True)
    assert history(acme, "/doc.odt") == OLD + [NEW]
    assert live_names(acme) == ["doc.odt"] and trash_contents(acme) == [b"lock"]


def test_vim_renames_the_file_to_its_backup_then_writes_it_anew(app, acme):
    written(acme, "/notes.txt", *OLD)
    put(acme, "/4913", b"")                                 # vim's probe: may it create?
    acme.remove("/4913", dirs=False)
    acme.rename("/notes.txt", "/notes.txt~")                # SFTP rename: no overwrite
    put(acme, "/notes.txt", NEW)
    acme.remove("/notes.txt~", dirs=False)
    assert history(acme, "/notes.txt") == OLD + [NEW]
    assert live_names(acme) == ["notes.txt"] and trash_contents(acme) == [b""]
    assert used(app) == len(NEW)


def test_gedit_renames_its_output_stream_onto_the_name(acme):
    written(acme, "/notes.txt", *OLD)
    put(acme, "/.goutputstream-Q1W2E3", NEW)
    acme.rename("/.goutputstream-Q1W2E3", "/notes.txt", overwrite=True)   # posix-rename
    assert history(acme, "/notes.txt") == OLD + [NEW]
    assert live_names(acme) == ["notes.txt"] and trash_contents(acme) == []


def test_a_backup_kept_holds_the_previous_content_and_the_file_the_rest(acme):
    """emacs (and vim with `backup`): the backup stays; the file's history is all but
    the content the backup shows."""
    written(acme, "/notes.txt", *OLD)
    acme.rename("/notes.txt", "/notes.txt~")
    put(acme, "/notes.txt", NEW)
    assert history(acme, "/notes.txt") == OLD[:-1] + [NEW]
    assert history(acme, "/notes.txt~") == OLD[-1:]


def test_an_original_deleted_before_the_new_content_arrives(acme):
    written(acme, "/doc.docx", *OLD)
    acme.rename("/doc.docx", "/doc-old.docx")
    acme.remove("/doc-old.docx")
    put(acme, "/doc.docx", NEW)
    assert history(acme, "/doc.docx") == OLD + [NEW]
    assert trash_contents(acme) == []


def test_litter_keeps_only_its_latest_content(app, acme):
    blobs_before = set(app.provider.blob_ids())
    written(acme, "/.DS_Store", b"one", b"two!", b"three")
    assert history(acme, "/.DS_Store") == [b"three"]
    assert len(set(app.provider.blob_ids()) - blobs_before) == 1   # the dropped blobs went
    written(acme, "/Thumbs.db", b"a", b"bb")
    assert history(acme, "/Thumbs.db") == [b"bb"]
    assert used(app) == len(b"three") + 2
    acme.remove("/.DS_Store")                               # deleting it: the trash, as any
    assert trash_contents(acme) == [b"three"]


def test_a_document_is_not_litter(acme):
    written(acme, "/report.pdf", *OLD)
    assert history(acme, "/report.pdf") == OLD


# -- what is not joined ---------------------------------------------------------------

def test_a_file_renamed_to_a_name_of_its_own_stays_apart(acme):
    written(acme, "/report.pdf", *OLD)
    acme.rename("/report.pdf", "/report 2025.pdf")
    put(acme, "/report.pdf", NEW)
    assert history(acme, "/report 2025.pdf") == OLD
    assert history(acme, "/report.pdf") == [NEW]


def test_a_file_renamed_apart_then_deleted_after_the_new_one_came_stays_apart(acme):
    written(acme, "/report.pdf", *OLD)
    acme.rename("/report.pdf", "/report 2025.pdf")
    put(acme, "/report.pdf", NEW)               # two files, side by side, for a while
    acme.remove("/report 2025.pdf")
    assert history(acme, "/report.pdf") == [NEW]
    assert trash_contents(acme) == [OLD[-1]]


def test_a_deleted_file_whose_name_is_reused_stays_in_the_trash(acme):
    written(acme, "/report.pdf", *OLD)
    acme.remove("/report.pdf")
    put(acme, "/report.pdf", NEW)
    assert history(acme, "/report.pdf") == [NEW]
    assert trash_contents(acme) == [OLD[-1]]


def test_another_users_rename_is_not_followed(app, acme):
    bob = client_session(app, "acme", "bob", create_client=False)
    written(acme, "/doc.docx", *OLD)
    acme.rename("/doc.docx", "/~WRL0001.tmp")
    put(bob, "/doc.docx", NEW)
    bob.remove("/~WRL0001.tmp")
    assert history(acme, "/doc.docx") == [NEW]
    assert trash_contents(acme) == [OLD[-1]]


def test_a_stand_in_in_another_folder_is_not_followed(acme):
    acme.mkdir("/a")
    acme.mkdir("/b")
    written(acme, "/a/doc.docx", *OLD)
    acme.rename("/a/doc.docx", "/b/~WRL0001.tmp")
    put(acme, "/a/doc.docx", NEW)
    acme.remove("/b/~WRL0001.tmp")
    assert history(acme, "/a/doc.docx") == [NEW]


def test_a_rename_older_than_the_window_is_not_followed(acme, monkeypatch):
    written(acme, "/doc.docx", *OLD)
    acme.rename("/doc.docx", "/~WRL0001.tmp")
    monkeypatch.setattr(saving, "WINDOW", -1.0)             # (as if it were long ago)
    put(acme, "/doc.docx", NEW)
    acme.remove("/~WRL0001.tmp")
    assert history(acme, "/doc.docx") == [NEW]
    assert trash_contents(acme) == [OLD[-1]]


def test_a_file_moved_back_onto_its_own_name_is_itself(acme):
    written(acme, "/notes.txt", *OLD)
    acme.rename("/notes.txt", "/notes.txt~")
    acme.rename("/notes.txt~", "/notes.txt")
    assert history(acme, "/notes.txt") == OLD
    with pytest.raises(NotFound):
        acme.stat("/notes.txt~")
