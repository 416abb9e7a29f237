"""One tree over both protocols, and the guarantees that hold whichever is used.

- what SFTP uploads WebDAV serves byte-identical, and the other way round;
- file contents never exist on disk in plain text (db and WAL included);
- a tampered blob is never served over either protocol, not even in part;
- overwrites keep versions, and `strongroom versions restore` brings them back;
- a client's users cannot reach another client's tree by any spelling of a path.
"""
import hashlib
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.daemon import sftp_lines, sftp_quote as q

CHUNK = 256 * 1024
ATTEMPT_SECONDS = 5     # a refusal takes milliseconds; a hanging one is cut off


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ok(proc):
    out = proc.stdout if isinstance(proc.stdout, str) else proc.stdout.decode("utf-8", "replace")
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}"
    return proc


def local(daemon, data: bytes, name="f"):
    path = daemon.path(name)
    path.write_bytes(data)
    return path


def sftp_put(daemon, user, data: bytes, remote: str):
    ok(daemon.run_sftp(user, [f"put {q(local(daemon, data))} {q(remote)}"]))


def sftp_get(daemon, user, remote: str) -> bytes:
    down = daemon.path("down")
    ok(daemon.run_sftp(user, [f"get {q(remote)} {q(down)}"]))
    return down.read_bytes()


def blob_files(daemon) -> set:
    """Committed blobs: DATA/blobs/xx/<32 hex>, never the staging area."""
    return {p for p in daemon.blob_dir.glob("??/*") if p.is_file()}


# -- the same bytes over both protocols -------------------------------------------------

def test_sftp_upload_is_served_identically_over_webdav(daemon):
    data = os.urandom(5 * CHUNK + 333)
    remote = "/cross/Übersicht März.bin"
    ok(daemon.run_sftp("alice", ["-mkdir /cross"]))
    sftp_put(daemon, "alice", data, remote)

    curl = daemon.request("alice", "GET", remote)
    assert (curl.returncode, curl.status) == (0, 200)
    assert sha(curl.body) == sha(data)
    down = daemon.path("rclone-down")
    ok(daemon.rclone("alice", "copyto", daemon.remote("alice", remote), down))
    assert sha(down.read_bytes()) == sha(data)


def test_webdav_upload_is_served_identically_over_sftp(daemon):
    by_rclone, by_curl = os.urandom(3 * CHUNK + 1), os.urandom(CHUNK - 1)
    ok(daemon.rclone("alice", "copyto", local(daemon, by_rclone),
                     daemon.remote("alice", "/cross-dav/a b/c d.bin")))
    put = daemon.request("alice", "PUT", "/cross-dav/Übersicht.bin",
                         "--data-binary", f"@{local(daemon, by_curl)}")
    assert put.status == 201, put

    assert sha(sftp_get(daemon, "alice", "/cross-dav/a b/c d.bin")) == sha(by_rclone)
    assert sha(sftp_get(daemon, "alice", "/cross-dav/Übersicht.bin")) == sha(by_curl)


# -- encryption at rest ----------------------------------------------------------------

def test_contents_never_on_disk_in_plain_text(daemon):
    marker = uuid.uuid4().hex.encode()
    name_marker = f"name-{uuid.uuid4().hex}"
    content = (b"confidential " + marker + b"\n") * 5000 + marker
    sftp_put(daemon, "alice", content, f"/{name_marker}.txt")
    sftp_put(daemon, "alice", content + b"v2", f"/{name_marker}.txt")   # a version too
    put = daemon.request("alice", "PUT", "/dav-marker.txt",
                         "--data-binary", f"@{local(daemon, marker * 100)}")
    assert put.status == 201, put
    assert daemon.request("alice", "GET", f"/{name_marker}.txt").body == content + b"v2"

    names_seen = []
    files = [p for p in daemon.data_dir.rglob("*") if p.is_file()]
    assert any(p.name.startswith("strongroom.db") for p in files)
    for path in files:
        data = path.read_bytes()
        assert marker not in data, f"file contents in plain text in {path}"
        if name_marker.encode() in data:
            names_seen.append(path)
    # The control: file names are metadata, stored in the database in plain text;
    # finding them proves the walk really read the database and its WAL.
    assert names_seen, "the walk did not see the database contents"


# -- tamper detection ------------------------------------------------------------------

def _flip_middle_byte(path) -> int:
    offset = path.stat().st_size // 2
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x01]))
    return offset


def assert_not_served(r, original: bytes) -> None:
    """An error status, or a success whose body stops short: never altered bytes."""
    if r.status >= 400:
        return
    assert r.status in (200, 206), r
    assert r.returncode != 0, "the full body was sent with a success status"
    assert r.body != original
    assert original.startswith(r.body), "WebDAV served bytes that are not the original's"


def test_tampered_blob_is_never_served(daemon):
    data = os.urandom(6 * CHUNK + 4321)
    remote = "/tamper.bin"
    before = blob_files(daemon)
    sftp_put(daemon, "alice", data, remote)
    new = blob_files(daemon) - before
    assert len(new) == 1, new
    blob = new.pop()
    _flip_middle_byte(blob)

    down = daemon.path("tampered-sftp")
    got = daemon.run_sftp("alice", [f"get {remote} {q(down)}"])
    assert got.returncode != 0, "sftp downloaded a tampered file without an error"
    partial = down.read_bytes() if down.exists() else b""
    assert partial != data
    assert data.startswith(partial), "sftp served bytes that are not the original's"

    assert_not_served(daemon.request("alice", "GET", remote), data)

    # A range inside an untouched chunk before the damage is still served exactly;
    # a range over the damaged chunk is not.
    first = daemon.request("alice", "GET", remote, "-H", f"Range: bytes=10-{CHUNK - 1}")
    assert (first.status, first.body) == (206, data[10:CHUNK])
    tail = daemon.request("alice", "GET", remote, "-H", f"Range: bytes={2 * CHUNK}-")
    assert_not_served(tail, data[2 * CHUNK:])

    _flip_middle_byte(blob)   # repaired: served again, proving the damage was the cause
    assert sftp_get(daemon, "alice", remote) == data


# -- versions -------------------------------------------------------------------------

def test_overwrites_keep_versions_and_restore_brings_back_first(daemon):
    contents = [os.urandom(CHUNK + i) for i in range(4)]
    for data in contents:
        sftp_put(daemon, "alice", data, "/versioned.bin")

    listed = json.loads(ok(daemon.cli("versions", "list", "/acme/versioned.bin",
                                      "--json")).stdout)
    assert len(listed) == 4
    assert [v["current"] for v in listed] == [False, False, False, True]
    assert len({v["digest"] for v in listed}) == 4      # keyed: differs with the content
    assert [v["size"] for v in listed] == [len(d) for d in contents]
    assert sftp_get(daemon, "alice", "/versioned.bin") == contents[-1]

    ok(daemon.cli("versions", "restore", "/acme/versioned.bin", listed[0]["id"]))

    assert sftp_get(daemon, "alice", "/versioned.bin") == contents[0]
    assert daemon.request("alice", "GET", "/versioned.bin").body == contents[0]
    after = json.loads(ok(daemon.cli("versions", "list", "/acme/versioned.bin",
                                     "--json")).stdout)
    assert len(after) == 5 and after[-1]["current"] and after[-1]["digest"] == listed[0]["digest"]


# -- client isolation -----------------------------------------------------------------

SECRET = b"beta's secret " + uuid.uuid4().hex.encode() + b"\n"


@pytest.fixture(scope="module")
def bobs_file(daemon):
    """bob's file /secret.txt in client beta, and alice's own /mine.txt to move around."""
    sftp_put(daemon, "bob", SECRET, "/secret.txt")
    sftp_put(daemon, "alice", b"alice's own\n", "/mine.txt")
    return "/secret.txt"


ESCAPES = ["/../beta/secret.txt", "/beta/secret.txt", "/../../beta/secret.txt",
           "../beta/secret.txt", "/./../beta/./secret.txt", "/acme/../beta/secret.txt"]


def _sftp_attempts():
    for p in ESCAPES:
        folder = p.rsplit("/", 1)[0] or "/"
        yield f"get {q(p)} stolen.txt"
        yield f"ls {q(folder)}"
        yield f"put mine.txt {q(p)}"
        yield f"rm {q(p)}"
        yield f"rename /mine.txt {q(p)}"
        yield f"mkdir {q(folder + '/newdir')}"


@pytest.mark.parametrize("command", list(_sftp_attempts()))
def test_sftp_cannot_reach_another_clients_tree(daemon, bobs_file, command):
    (daemon.work / "mine.txt").write_bytes(b"alice overwrites\n")
    (daemon.work / "stolen.txt").unlink(missing_ok=True)
    proc = daemon.run_sftp("alice", [command])
    assert proc.returncode != 0, f"{command!r} succeeded:\n{proc.stdout.decode()}"
    assert SECRET.strip() not in proc.stdout + proc.stderr
    assert not (daemon.work / "stolen.txt").exists()


def test_sftp_root_and_its_parent_show_only_own_tree(daemon, bobs_file):
    for batch in (["ls -1 /"], ["ls -1 /.."], ["cd /..", "ls -1"], ["cd ..", "ls -1"]):
        names = {n.rsplit("/", 1)[-1] for n in sftp_lines(ok(daemon.run_sftp("alice", batch)))}
        assert "mine.txt" in names, (batch, names)
        assert not names & {"secret.txt", "acme", "beta"}, (batch, names)


RAW_ESCAPES = ["/../beta/secret.txt", "/%2e%2e/beta/secret.txt", "/%2E%2E/beta/secret.txt",
               "/beta/secret.txt", "/acme/../beta/secret.txt", "/./%2e%2e/./beta/secret.txt",
               "/%2e%2e/%2e%2e/beta/secret.txt"]


def _webdav_attempts():
    for p in RAW_ESCAPES:
        folder = p.rsplit("/", 1)[0] or "/"
        yield "GET", p, ()
        yield "PUT", p, ("--data-binary", "alice overwrites")
        yield "DELETE", p, ()
        yield "PROPFIND", p, ("-H", "Depth: 0")
        yield "PROPFIND", folder + "/", ("-H", "Depth: 1")
        yield "MKCOL", folder + "/newdir", ()
        yield "PROPPATCH", p, ("--data-binary", _PROPPATCH)
        yield "LOCK", p, ("--data-binary", _LOCK)
        for method in ("MOVE", "COPY"):
            yield method, "/mine.txt", ("-H", "Overwrite: T", "-H", f"Destination: {{base}}{p}")
        yield "COPY", p, ("-H", "Destination: {base}/stolen.txt")


_PROPPATCH = ('<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:x">'
              '<D:set><D:prop><x:tag>alice</x:tag></D:prop></D:set></D:propertyupdate>')
_LOCK = ('<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
         '</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>')


def _attempt(daemon, method, path, extra):
    """One request as alice; a description of what went wrong, or None."""
    extra = tuple(a.replace("{base}", daemon.base_url) for a in extra)
    r = daemon.request("alice", method, path, *extra, raw=True, max_time=ATTEMPT_SECONDS)
    if SECRET.strip() in r.body:
        return f"{method} {path}: beta's secret in the response"
    if r.status < 400:
        return f"{method} {path}: {r.status} {r.body[:200]!r}"
    if r.returncode != 0:
        return f"{method} {path}: {r.status} but curl exit {r.returncode}: {r.stderr.strip()}"
    return None


def test_webdav_cannot_reach_another_clients_tree(daemon, bobs_file):
    """The whole table, run concurrently so that a hanging response costs seconds, not minutes.

    Every attempt must get a complete error response: a refusal whose body never
    arrives leaves the client hanging (curl exit 28) and is reported as a failure.
    """
    attempts = list(_webdav_attempts())
    with ThreadPoolExecutor(max_workers=12) as pool:
        problems = [p for p in pool.map(lambda a: _attempt(daemon, *a), attempts) if p]
    assert not problems, f"{len(problems)} of {len(attempts)} attempts:\n" + "\n".join(problems)
    assert daemon.request("alice", "GET", "/stolen.txt").status == 404


def test_webdav_escaping_path_gets_a_complete_error_response(daemon):
    """'/%2e%2e/...' is refused; the refusal must arrive whole, not leave the client waiting."""
    r = daemon.request("alice", "GET", "/%2e%2e/beta/secret.txt", raw=True, max_time=10)
    assert r.status in (400, 403, 404), r
    assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr.strip()}"


def test_webdav_encoded_slash_is_a_name_in_own_tree(daemon, bobs_file):
    """'%2F' is not a separator (cheroot keeps it): '..%2Fbeta%2Fsecret.txt' is just an
    odd file name in alice's own tree, never a way into beta's."""
    for spelling in ("/..%2fbeta%2fsecret.txt", "/%2e%2e%2fbeta%2fsecret.txt"):
        r = daemon.request("alice", "GET", spelling, raw=True, max_time=ATTEMPT_SECONDS)
        assert SECRET.strip() not in r.body
    put = daemon.request("alice", "PUT", "/..%2fbeta%2fsecret.txt", "--data-binary", "odd",
                         raw=True, max_time=ATTEMPT_SECONDS)
    assert put.status in (201, 204, 400, 403), put
    if put.status in (201, 204):
        names = {n.rsplit("/", 1)[-1]
                 for n in sftp_lines(ok(daemon.run_sftp("alice", ["ls -1a /"])))}
        assert "..%2Fbeta%2Fsecret.txt" in names
        ok(daemon.run_sftp("alice", [f"rm {q('/..%2Fbeta%2Fsecret.txt')}"]))


def test_staff_sees_every_client_and_bobs_file_is_unchanged(daemon, bobs_file):
    names = set(sftp_lines(ok(daemon.run_sftp("staff", ["ls -1 /"]))))
    assert {"/acme", "/beta"} <= names
    assert {"acme/", "beta/"} <= set(ok(daemon.rclone("staff", "lsf",
                                                      daemon.remote("staff", ""))).stdout.split())
    assert daemon.request("staff", "GET", "/beta/secret.txt").body == SECRET

    # after every attempt above (this test runs last in the module)
    assert sftp_get(daemon, "bob", "/secret.txt") == SECRET
    assert daemon.request("bob", "GET", "/secret.txt").body == SECRET
    assert set(sftp_lines(ok(daemon.run_sftp("bob", ["ls -1 /"])))) == {
        "/@trash", "/@versions", "/secret.txt"}
    listed = json.loads(ok(daemon.cli("versions", "list", "/beta/secret.txt",
                                      "--json")).stdout)
    assert len(listed) == 1
