"""The Session service layer on a real App, once on SQLite and once on PostgreSQL."""
import hashlib
import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from strongroom.appliance.errors import BadRequest, Conflict, Denied, NotFound, QuotaExceeded
from strongroom.appliance.service import audit, consistency
from strongroom.appliance.service.views import VIEWS
from tests.support.sessions import admin_session, client_session, digest, get, put

CHUNK = 256 * 1024   # the default chunk size the data dir is made with


@pytest.fixture
def acme(app):
    return client_session(app, "acme")


def staging(app) -> list[str]:
    return sorted(p.name for p in app.provider.staging.iterdir())


def blobs(app) -> list[str]:
    return list(app.provider.blob_ids())


def top(session, path: str) -> list:
    """The entries of a tree's top folder, without the read-only views."""
    return [e for e in session.list(path) if e.name not in VIEWS]


def tree(session, path: str = "/") -> dict:
    """Every path below `path` -> (is_dir, digest, number of versions): a snapshot to compare."""
    out = {}
    for e in session.list(path):
        if e.name in VIEWS:      # read-only views of the versions counted here, and the trash
            continue
        out[e.path] = (e.is_dir, e.digest, None if e.is_dir else len(session.versions(e.path)))
        if e.is_dir:
            out.update(tree(session, e.path))
    return out


# -- folders, uploads, reads ------------------------------------------------------

def test_mkdir_list_stat(acme):
    acme.mkdir("/docs")
    acme.mkdir("/docs/2024")
    put(acme, "/docs/a.txt", b"abc")
    assert [(e.name, e.is_dir) for e in acme.list("/docs")] == [("2024", True), ("a.txt", False)]
    assert [e.path for e in top(acme, "/")] == ["/docs"]
    assert acme.stat("/docs").is_dir and acme.stat("/").is_dir
    st = acme.stat("/docs/a.txt")
    assert (st.is_dir, st.size, st.digest, st.path) == (False, 3, digest(acme, b"abc"),
                                                        "/docs/a.txt")
    assert acme.list("/docs/2024") == []


@pytest.mark.parametrize("path,error", [
    ("/docs", Conflict),            # exists
    ("/docs/a.txt", Conflict),      # a file has that name
    ("/nope/x", Conflict),          # parent missing
    ("/docs/a.txt/x", Conflict),    # parent is a file
    ("/", Denied),                  # the client's top folder
])
def test_mkdir_refused(acme, path, error):
    acme.mkdir("/docs")
    put(acme, "/docs/a.txt", b"abc")
    with pytest.raises(error):
        acme.mkdir(path)


@pytest.mark.parametrize("path,op,error", [
    ("/missing.txt", "stat", NotFound),
    ("/missing.txt", "read", NotFound),
    ("/missing", "list", NotFound),
    ("/docs", "read", Conflict),
    ("/docs/a.txt", "list", Conflict),
])
def test_lookup_errors(acme, path, op, error):
    acme.mkdir("/docs")
    put(acme, "/docs/a.txt", b"abc")
    call = {"stat": acme.stat, "read": lambda p: get(acme, p), "list": acme.list}[op]
    with pytest.raises(error):
        call(path)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK + 1, 4 * CHUNK + 17])
def test_upload_reads_back(app, acme, size):
    data = os.urandom(size)
    entry = put(acme, "/f.bin", data, block=100_000)
    assert (entry.size, entry.digest) == (size, digest(acme, data))
    assert get(acme, "/f.bin") == data
    assert acme.stat("/f.bin").digest == digest(acme, data)
    handle = acme.open_read("/f.bin")
    try:
        mid = size // 2
        assert handle.read(mid, CHUNK + 3) == data[mid:mid + CHUNK + 3]
    finally:
        handle.close()
    assert staging(app) == [] and len(blobs(app)) == 1


# -- versions ---------------------------------------------------------------------

def test_overwrites_keep_versions_and_restore(acme):
    contents = [os.urandom(1000 + i) for i in range(4)]
    for data in contents:
        put(acme, "/doc.txt", data)
    versions = acme.versions("/doc.txt")
    assert [v.digest for v in versions] == [digest(acme, d) for d in contents]
    assert [v.current for v in versions] == [False, False, False, True]
    assert all(get(acme, "/doc.txt", v.id) == d for v, d in zip(versions, contents))

    acme.restore("/doc.txt", versions[0].id)
    after = acme.versions("/doc.txt")
    assert len(after) == 5 and sum(v.current for v in after) == 1
    assert after[-1].current and after[-1].id not in {v.id for v in versions}
    assert get(acme, "/doc.txt") == contents[0]


def test_restore_of_foreign_version_is_refused(acme):
    put(acme, "/a.txt", b"a")
    other = put(acme, "/b.txt", b"b")
    with pytest.raises(NotFound):
        acme.restore("/a.txt", other.version_id)
    with pytest.raises(NotFound):
        get(acme, "/a.txt", other.version_id)
    assert get(acme, "/a.txt") == b"a"


# -- rename and remove -----------------------------------------------------------

def test_rename_file(acme):
    acme.mkdir("/in")
    put(acme, "/a.txt", b"one")
    put(acme, "/a.txt", b"two")
    acme.rename("/a.txt", "/in/b.txt")
    with pytest.raises(NotFound):
        acme.stat("/a.txt")
    assert get(acme, "/in/b.txt") == b"two"
    assert [v.digest for v in acme.versions("/in/b.txt")] == [digest(acme, b"one"),
                                                             digest(acme, b"two")]


def test_rename_folder_with_children(acme):
    for d in ("/d", "/d/sub", "/d/sub/deep"):
        acme.mkdir(d)
    files = {"/d/a.txt": b"A", "/d/sub/b.txt": b"B", "/d/sub/deep/c.txt": b"C"}
    for path, data in files.items():
        put(acme, path, data)
    acme.rename("/d", "/e")
    for path, data in files.items():
        assert get(acme, "/e" + path[2:]) == data
        with pytest.raises(NotFound):
            acme.stat(path)
    assert [e.path for e in top(acme, "/")] == ["/e"]


def test_rename_onto_file_with_overwrite_keeps_replaced_bytes(acme):
    put(acme, "/old.txt", b"replaced bytes")
    put(acme, "/new.txt", b"moved bytes")
    acme.rename("/new.txt", "/old.txt", overwrite=True)
    assert get(acme, "/old.txt") == b"moved bytes"
    with pytest.raises(NotFound):
        acme.stat("/new.txt")
    history = acme.versions("/old.txt")
    assert [(v.digest, v.current) for v in history] == [
        (digest(acme, b"replaced bytes"), False), (digest(acme, b"moved bytes"), True)]
    assert get(acme, "/old.txt", history[0].id) == b"replaced bytes"


@pytest.mark.parametrize("src,dst,overwrite,error", [
    ("/a.txt", "/b.txt", False, Conflict),          # target exists
    ("/d", "/b.txt", False, Conflict),
    ("/a.txt", "/d", True, Conflict),               # non-empty folder is not replaced
    ("/a.txt", "/nope/a.txt", False, Conflict),     # missing parent
    ("/d", "/d/inside", False, BadRequest),         # into itself
    ("/missing", "/z", False, NotFound),
    ("/", "/z", False, Denied),
])
def test_rename_refused_changes_nothing(acme, src, dst, overwrite, error):
    acme.mkdir("/d")
    put(acme, "/d/child.txt", b"child")
    put(acme, "/a.txt", b"A")
    put(acme, "/b.txt", b"B")
    before = tree(acme)
    with pytest.raises(error):
        acme.rename(src, dst, overwrite=overwrite)
    assert tree(acme) == before


@pytest.mark.parametrize("path,kwargs,error", [
    ("/d", {}, Conflict),                       # not empty
    ("/d", {"recursive": True, "dirs": False}, Conflict),
    ("/d/child.txt", {"files": False}, Conflict),
    ("/missing", {}, NotFound),
    ("/", {"recursive": True}, Denied),
])
def test_remove_refused_changes_nothing(acme, path, kwargs, error):
    acme.mkdir("/d")
    put(acme, "/d/child.txt", b"child")
    before = tree(acme)
    with pytest.raises(error):
        acme.remove(path, **kwargs)
    assert tree(acme) == before


def test_copy_folder_into_itself_is_refused(acme):
    acme.mkdir("/d")
    put(acme, "/d/a.txt", b"x")
    before = tree(acme)
    with pytest.raises(BadRequest):
        acme.copy("/d", "/d/sub")
    assert tree(acme) == before


def test_copy_file_and_folder(acme):
    acme.mkdir("/d")
    put(acme, "/d/a.txt", b"A")
    acme.copy("/d", "/e")
    acme.copy("/d/a.txt", "/b.txt")
    assert get(acme, "/e/a.txt") == get(acme, "/b.txt") == b"A"
    with pytest.raises(Conflict):
        acme.copy("/d/a.txt", "/b.txt")
    assert acme.usage()[0] == 3


def test_remove_recursive_and_usage(acme):
    acme.mkdir("/d")
    put(acme, "/d/a.txt", b"x" * 100)
    put(acme, "/keep.txt", b"y" * 10)
    assert acme.usage()[0] == 110
    acme.remove("/d", recursive=True)
    assert [e.path for e in top(acme, "/")] == ["/keep.txt"]
    with pytest.raises(NotFound):
        acme.stat("/d/a.txt")
    assert acme.usage()[0] == 10


# -- uploads that do not commit, resume ---------------------------------------------

def test_aborted_upload_keeps_previous_version(app, acme):
    put(acme, "/f.txt", b"previous")
    upload = acme.open_write("/f.txt")
    upload.append(os.urandom(3 * CHUNK))
    upload.abort()
    upload.abort()
    assert get(acme, "/f.txt") == b"previous"
    assert len(acme.versions("/f.txt")) == 1
    assert staging(app) == [] and len(blobs(app)) == 1
    with pytest.raises(Conflict):
        upload.append(b"more")


def test_uncommitted_upload_is_invisible(app, acme):
    put(acme, "/old.txt", b"old")
    new, over = acme.open_write("/new.txt"), acme.open_write("/old.txt")
    for upload in (new, over):
        upload.append(b"pending " * 1000)
    assert [e.name for e in top(acme, "/")] == ["old.txt"]
    with pytest.raises(NotFound):
        acme.stat("/new.txt")
    assert get(acme, "/old.txt") == b"old" and len(acme.versions("/old.txt")) == 1
    assert consistency.check(app)["staging_files"]        # in progress, not published
    new.commit()
    assert get(acme, "/new.txt") == b"pending " * 1000
    over.abort()
    assert get(acme, "/old.txt") == b"old"


@pytest.mark.parametrize("base,offset,data,expected", [
    (b"hello ", 6, b"world", b"hello world"),               # resume / append at the old size
    (b"hello ", 9, b"!", b"hello \0\0\0!"),                 # a gap past the old end is zeros
    (b"hello world", 6, b"WORLD", b"hello WORLD"),          # overlay past the copied part
    (b"hello", 5, b"", b"hello"),
    (b"", 0, b"fresh", b"fresh"),
])
def test_resume_continues_previous_version(acme, base, offset, data, expected):
    put(acme, "/f.txt", base)
    upload = acme.open_write("/f.txt", truncate=False)
    upload.write(offset, data)
    upload.commit()
    assert get(acme, "/f.txt") == expected
    assert get(acme, "/f.txt", acme.versions("/f.txt")[0].id) == base


def test_resume_across_chunks(acme):
    first, more = os.urandom(3 * CHUNK + 5), os.urandom(CHUNK + 7)
    put(acme, "/big.bin", first)
    upload = acme.open_write("/big.bin", truncate=False)
    assert upload.size == len(first)
    for i in range(0, len(more), 50_000):
        upload.write(len(first) + i, more[i:i + 50_000])
    upload.commit()
    assert acme.stat("/big.bin").digest == digest(acme, first + more)


@pytest.mark.parametrize("truncate,writes,expected", [
    (True, [(0, b"abcdef"), (3, b"X")], b"abcXef"),
    (True, [(0, b"abcdef"), (0, b"Z")], b"Zbcdef"),
    (False, [(7, b"tail"), (2, b"X")], b"12X4567tail"),   # resumed, then an earlier part
    (False, [(1, b"Q")], b"1Q34567"),                     # rewrite inside the old version
    (True, [(10, b"late"), (0, b"early")], b"early" + bytes(5) + b"late"),
])
def test_write_before_position_rewrites(acme, truncate, writes, expected):
    put(acme, "/f.txt", b"1234567")
    upload = acme.open_write("/f.txt", truncate=truncate)
    for offset, data in writes:
        upload.write(offset, data)
    assert get(acme, "/f.txt") == b"1234567"  # nothing visible before commit
    upload.commit()
    assert get(acme, "/f.txt") == expected
    assert len(acme.versions("/f.txt")) == 2


def test_random_writes_match_a_model_and_leave_no_scratch(app, acme):
    rng = random.Random(7)
    for trial in range(12):
        base = rng.randbytes(rng.randint(0, 3 * CHUNK))
        put(acme, "/model.bin", base)
        truncate = trial % 3 == 0
        model = bytearray() if truncate else bytearray(base)
        upload = acme.open_write("/model.bin", truncate=truncate)
        for _ in range(rng.randint(1, 25)):
            offset = rng.randint(0, len(model) + CHUNK)
            data = rng.randbytes(rng.randint(1, 2 * CHUNK))
            upload.write(offset, data)
            model.extend(bytes(max(0, offset - len(model))))
            model[offset:offset + len(data)] = data
        if trial % 4 == 3:
            upload.abort()
            assert get(acme, "/model.bin") == base
        else:
            upload.commit()
            assert get(acme, "/model.bin") == bytes(model)
    assert not list(app.provider.staging.iterdir())


@pytest.mark.parametrize("existing", [True, False], ids=["overwrite", "new-file"])
@pytest.mark.parametrize("order", ["first-opened-commits-last", "second-opened-commits-last"])
def test_concurrent_uploads_last_commit_wins(acme, order, existing):
    if existing:
        put(acme, "/f.txt", b"original")
    one, two = acme.open_write("/f.txt"), acme.open_write("/f.txt")
    one.append(b"from one")
    two.append(b"from two")
    early, late = (two, one) if order == "first-opened-commits-last" else (one, two)
    early.commit()
    late.commit()
    winner = b"from one" if late is one else b"from two"
    loser = b"from two" if late is one else b"from one"
    assert get(acme, "/f.txt") == winner
    versions = acme.versions("/f.txt")
    expected = [digest(acme, d) for d in [b"original"] * existing + [loser, winner]]
    assert [v.digest for v in versions] == expected
    assert [v.current for v in versions] == [False] * (len(expected) - 1) + [True]
    assert acme.usage()[0] == len(winner)


def test_parallel_commits_all_count_toward_usage(app):
    acme, n = client_session(app, "acme"), 8
    barrier = threading.Barrier(n)

    def upload(i):
        u = acme.open_write(f"/f{i}.bin")
        u.append(b"x" * 1000)
        barrier.wait()
        return u.commit()

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(upload, range(n)))
    assert len(top(acme, "/")) == n
    assert acme.usage()[0] == n * 1000


# -- quota ----------------------------------------------------------------------------

def test_quota_refuses_mid_stream_and_keeps_nothing(app):
    tiny = client_session(app, "tiny", quota=1024 * 1024)
    upload = tiny.open_write("/big.bin")
    sent, block = 0, os.urandom(64 * 1024)
    with pytest.raises(QuotaExceeded):
        while sent < 2 * 1024 * 1024:
            upload.append(block)
            sent += len(block)
    assert sent <= 1024 * 1024, "quota was checked only at the end"
    with pytest.raises(Conflict):
        upload.append(b"x")
    with pytest.raises(NotFound):
        tiny.stat("/big.bin")
    assert tiny.usage() == (0, 1024 * 1024)
    assert staging(app) == [] and blobs(app) == []


def test_quota_counts_current_versions(app):
    tiny = client_session(app, "tiny", quota=1000)
    put(tiny, "/a", b"x" * 600)
    put(tiny, "/a", b"y" * 900)          # replaces the current version: fits
    with pytest.raises(QuotaExceeded):
        put(tiny, "/b", b"z" * 200)
    assert tiny.usage() == (900, 1000)
    assert [e.name for e in top(tiny, "/")] == ["a"]


# -- isolation between clients ----------------------------------------------------------

TRICKS = ["/../globex/secret.txt", "/globex/secret.txt", "../globex/secret.txt",
          "/%2e%2e/globex/secret.txt", "%2e%2e/secret.txt", "/./../../secret.txt",
          "//..//..//secret.txt", "..\\globex\\secret.txt", "/globex/../../globex/secret.txt",
          "/..", "/../globex", "/globex", "/%2e%2e", "secret.txt", "/../globex/folder"]
ALLOWED = (NotFound, Denied, Conflict, BadRequest)


ATTEMPTS = {
    "list": lambda s, p: s.list(p),
    "stat": lambda s, p: s.stat(p),
    "read": lambda s, p: get(s, p),
    "versions": lambda s, p: s.versions(p),
    "write": lambda s, p: put(s, p, b"evil"),
    "resume": lambda s, p: s.open_write(p, truncate=False).commit(),
    "mkdir": lambda s, p: s.mkdir(p),
    "remove": lambda s, p: s.remove(p, recursive=True),
    "rename-into": lambda s, p: s.rename("/mine.txt", p, overwrite=True),
    "rename-from": lambda s, p: s.rename(p, "/stolen", overwrite=True),
    "copy-from": lambda s, p: s.copy(p, "/copied", overwrite=True),
    "copy-into": lambda s, p: s.copy("/mine.txt", p, overwrite=True),
}


def _leaks(result, secret: bytes, digests) -> bool:
    if isinstance(result, bytes):
        return secret in result
    items = result if isinstance(result, list) else [result]
    return any(getattr(i, "digest", None) in digests for i in items)


@pytest.mark.parametrize("attempt", ATTEMPTS.values(), ids=ATTEMPTS.keys())
def test_client_cannot_reach_another_client(app, attempt):
    secret = os.urandom(5000)
    admin = admin_session(app)
    acme, globex = client_session(app, "acme"), client_session(app, "globex")
    globex.mkdir("/folder")
    put(globex, "/secret.txt", secret)
    put(globex, "/folder/secret.txt", secret)
    before = tree(admin, "/globex")
    digests = {digest(globex, secret), digest(acme, secret)}   # as it is, or copied over
    for path in TRICKS:
        put(acme, "/mine.txt", b"mine")
        try:
            result = attempt(acme, path)
        except ALLOWED:
            result = None
        assert not _leaks(result, secret, digests), path
        assert not any(v[1] in digests for v in tree(acme).values()), path
        assert tree(admin, "/globex") == before, path
    assert get(globex, "/secret.txt") == secret


@pytest.mark.parametrize("path", ["/globex/secret.txt", "/../globex/secret.txt", "/globex"])
def test_client_paths_stay_in_own_tree(app, path):
    acme = client_session(app, "acme")
    client_session(app, "globex")
    assert acme.target(path).client == "acme"
    with pytest.raises(NotFound):
        acme.stat(path)


def test_staff_sees_every_client(app):
    admin = admin_session(app)
    acme, globex = client_session(app, "acme"), client_session(app, "globex")
    put(acme, "/a.txt", b"from acme")
    put(globex, "/g.txt", b"from globex")
    assert [(e.path, e.is_dir) for e in admin.list("/")] == [("/acme", True), ("/globex", True)]
    assert admin.stat("/").is_dir and admin.stat("/acme").name == "acme"
    assert [e.path for e in top(admin, "/acme")] == ["/acme/a.txt"]
    assert get(admin, "/globex/g.txt") == b"from globex"
    put(admin, "/acme/published.txt", b"for acme")
    assert get(acme, "/published.txt") == b"for acme"
    with pytest.raises(NotFound):
        globex.stat("/published.txt")
    with pytest.raises(Denied):          # the top level only lists clients
        admin.mkdir("/")
    for call in (admin.mkdir, admin.list, admin.stat):
        with pytest.raises(NotFound):
            call("/nosuchclient")


# -- nothing in clear text at rest -------------------------------------------------------

def _files_containing(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _db_columns_containing(app, needle: str) -> list[str]:
    """Every text or binary column of every table on PostgreSQL that holds `needle`."""
    found = []
    with app.db.read() as s:
        cols = s.execute(text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', "
            "'bytea')")).all()
        for table, column, kind in cols:
            test = (f'position(CAST(:b AS bytea) in "{column}") > 0' if kind == "bytea"
                    else f'strpos("{column}", :t) > 0')
            hits = s.scalar(text(f'SELECT count(*) FROM "{table}" WHERE {test}'),
                            {"b": needle.encode(), "t": needle})
            if hits:
                found.append(f"{table}.{column}")
    return found


def test_contents_never_stored_in_clear(app, data_dir, acme):
    marker = f"MARKER-{uuid.uuid4().hex}"
    small, big = marker.encode(), (marker.encode() + os.urandom(100)) * 20000
    put(acme, "/small.txt", small)
    put(acme, "/big.bin", big)
    put(acme, "/small.txt", b"overwritten")
    acme.copy("/big.bin", "/copy.bin")
    acme.restore("/small.txt", acme.versions("/small.txt")[0].id)
    acme.remove("/copy.bin")
    assert get(acme, "/small.txt") == small          # the contents are really there
    # nor a plain digest that would confirm a known document
    plain = [hashlib.sha256(d).hexdigest() for d in (small, big)]
    if app.db.url.startswith("sqlite"):
        assert _files_containing(data_dir, b"acme-user")   # the scan can see clear text
    else:
        assert _db_columns_containing(app, "acme-user")
        assert _db_columns_containing(app, marker) == []
        assert [_db_columns_containing(app, p) for p in plain] == [[], []]
    for needle in (marker, *plain):
        assert _files_containing(data_dir, needle.encode()) == []
    app.close()                                      # SQLite: checkpoint the WAL too
    for needle in (marker, *plain):
        assert _files_containing(data_dir, needle.encode()) == []


# -- audit trail and consistency ---------------------------------------------------------

def _busy(acme):
    acme.mkdir("/d")
    for i in range(3):
        put(acme, f"/d/f{i}.txt", b"x" * i)
    get(acme, "/d/f1.txt")
    acme.rename("/d/f1.txt", "/d/g.txt")
    acme.remove("/d/f2.txt")
    with pytest.raises(NotFound):
        get(acme, "/missing")


def _verify(app):
    """(events that verify, first bad event id, -1 for a cut-off end, or None)."""
    return tuple(app.admin().verify_audit()[:2])


def test_audit_chain_verifies(app, acme):
    _busy(acme)
    with app.db.read() as s:
        rows = s.scalar(text("SELECT count(*) FROM audit_events"))
        actions = set(s.scalars(text("SELECT action FROM audit_events")))
    assert rows > 10
    assert {"client-add", "user-add", "login", "mkdir", "write", "read", "rename",
            "delete"} <= actions
    assert _verify(app) == (rows, None)


def test_audit_events_filter_by_tree_user_and_outcome(app, acme):
    _busy(acme)
    other = client_session(app, "acme_2")          # '_' is a LIKE wildcard: must not widen
    put(other, "/x.txt", b"x")
    admin = app.admin()
    tree = admin.audit_events(client="acme")
    assert tree and all(e["path"] == "/acme" or e["path"].startswith("/acme/") for e in tree)
    assert not admin.audit_events(client="acme%")
    mine = admin.audit_events(actor="acme-user")
    assert mine and {e["actor"] for e in mine} == {"acme-user"}
    with pytest.raises(Denied):
        put(acme, "/@trash/x.txt", b"x")
    (refused,) = admin.audit_events(outcome_not_ok=True)
    assert refused["path"] == "/acme/@trash/x.txt" and refused["outcome"] == "denied"
    assert admin.audit_events(limit=2) == admin.audit_events()[-2:]
    assert admin.audit_events(since=time.time() + 60) == []


TAMPER = {
    "detail": ("UPDATE audit_events SET detail = 'forged' WHERE id = :id", 0),
    "actor": ("UPDATE audit_events SET actor = 'mallory' WHERE id = :id", 0),
    "path": ("UPDATE audit_events SET path = '/elsewhere' WHERE id = :id", 0),
    "ts": ("UPDATE audit_events SET ts = ts + 1 WHERE id = :id", 0),
    "delete-row": ("DELETE FROM audit_events WHERE id = :id", 1),
}


@pytest.mark.parametrize("sql,shift", TAMPER.values(), ids=TAMPER.keys())
def test_audit_tampering_is_found(app, acme, sql, shift):
    _busy(acme)
    with app.db.read() as s:
        ids = list(s.scalars(text("SELECT id FROM audit_events ORDER BY id")))
    victim = ids[len(ids) // 2]
    with app.db.write() as s:
        s.execute(text(sql), {"id": victim})
    assert _verify(app) == (ids.index(victim), ids[ids.index(victim) + shift])


def test_audit_truncation_is_found(app, acme):
    _busy(acme)
    with app.db.write() as s:
        s.execute(text("DELETE FROM audit_events WHERE id = (SELECT max(id) FROM audit_events)"))
    assert _verify(app)[1] == -1


def test_consistency_ok_after_work(app, acme):
    _busy(acme)
    upload = acme.open_write("/d/aborted.txt")
    upload.append(b"never")
    upload.abort()
    put(acme, "/d/f0.txt", b"new version")
    report = consistency.check(app)
    assert report["ok"], report
    assert report["blobs"] == report["versions"] == 4


@pytest.mark.parametrize("damage,field", [
    ("stray", "stray_blobs"), ("missing", "missing_blobs"), ("staging", "staging_files")])
def test_consistency_reports_damage(app, acme, damage, field):
    put(acme, "/f.txt", b"data")
    blob_id = blobs(app)[0]
    if damage == "stray":
        (app.provider.root / "ab").mkdir(exist_ok=True)
        (app.provider.root / "ab" / ("ab" + "0" * 30)).write_bytes(b"x")
    elif damage == "missing":
        app.provider.blob_path(blob_id).unlink()
    else:
        (app.provider.staging / "leftover.part").write_bytes(b"x")
    report = consistency.check(app)
    assert not report["ok"] and report[field]
