"""rclone's webdav backend and curl against the real daemon over HTTPS.

rclone: copy up, check --download, lsf, moveto, delete, purge. curl: PUT, GET
(whole and Range, including ranges across encrypted-chunk boundaries), PROPFIND.
"""
import hashlib
import os
import xml.etree.ElementTree as ET
from urllib.parse import quote, unquote

import pytest

BIG = 20 * 1024 * 1024
CHUNK = 256 * 1024          # the default storage.chunk_size: ranges across it matter
TREE = {
    "Übersicht März.txt": "Umsätze für März\n".encode(),
    "a b/c d.txt": b"spaces in folder and file name\n",
    "a b/tief/ß€ 😀.bin": os.urandom(70_000),
    "leer.txt": b"",
}
DAV = "{DAV:}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ok(proc):
    assert proc.returncode == 0, f"rclone exited {proc.returncode}:\n{proc.stderr}"
    return proc


def lsf(daemon, user, path, *flags) -> set[str]:
    return set(ok(daemon.rclone(user, "lsf", *flags, daemon.remote(user, path)))
               .stdout.splitlines())


@pytest.fixture
def local_tree(daemon):
    root = daemon.path("tree")
    for rel, data in TREE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    with open(root / "big.bin", "wb") as f:
        for _ in range(BIG // (1 << 20)):
            f.write(os.urandom(1 << 20))
    return root


def test_rclone_copy_check_and_list(daemon, local_tree):
    ok(daemon.rclone("alice", "copy", local_tree, daemon.remote("alice", "dav-tree")))

    ok(daemon.rclone("alice", "check", "--download", local_tree,
                     daemon.remote("alice", "dav-tree")))
    assert lsf(daemon, "alice", "dav-tree", "-R", "--files-only") == set(TREE) | {"big.bin"}
    assert lsf(daemon, "alice", "dav-tree", "--dirs-only") == {"a b/"}
    sizes = dict(line.rsplit(";", 1) for line in
                 lsf(daemon, "alice", "dav-tree", "--format", "ps", "--files-only"))
    assert sizes["big.bin"] == str(BIG)


def test_rclone_download_matches(daemon, local_tree):
    ok(daemon.rclone("alice", "copy", local_tree, daemon.remote("alice", "dav-down")))
    down = daemon.path("down")
    ok(daemon.rclone("alice", "copy", daemon.remote("alice", "dav-down"), down))
    for rel, data in TREE.items():
        assert (down / rel).read_bytes() == data, rel
    assert sha((down / "big.bin").read_bytes()) == sha((local_tree / "big.bin").read_bytes())


def test_rclone_moveto(daemon):
    data = os.urandom(CHUNK + 17)
    src = daemon.path("src")
    src.write_bytes(data)
    ok(daemon.rclone("alice", "copyto", src, daemon.remote("alice", "dav-move/a b/Übersicht.bin")))

    ok(daemon.rclone("alice", "moveto", daemon.remote("alice", "dav-move/a b/Übersicht.bin"),
                     daemon.remote("alice", "dav-move/c d/März 2.bin")))

    assert lsf(daemon, "alice", "dav-move", "-R", "--files-only") == {"c d/März 2.bin"}
    down = daemon.path("moved")
    ok(daemon.rclone("alice", "copyto", daemon.remote("alice", "dav-move/c d/März 2.bin"), down))
    assert down.read_bytes() == data


def test_rclone_delete_and_purge(daemon, local_tree):
    ok(daemon.rclone("alice", "copy", local_tree, daemon.remote("alice", "dav-del")))

    ok(daemon.rclone("alice", "delete", "--include", "*.txt", daemon.remote("alice", "dav-del")))
    assert lsf(daemon, "alice", "dav-del", "-R", "--files-only") == {"a b/tief/ß€ 😀.bin",
                                                                      "big.bin"}

    ok(daemon.rclone("alice", "purge", daemon.remote("alice", "dav-del")))
    assert "dav-del/" not in lsf(daemon, "alice", "")
    gone = daemon.rclone("alice", "lsf", daemon.remote("alice", "dav-del"))
    assert gone.returncode != 0


def test_curl_put_get_and_ranges(daemon):
    data = os.urandom(3 * CHUNK + 1234)
    src = daemon.path("put.bin")
    src.write_bytes(data)
    path = "/dav-curl/Übersicht März.bin"
    assert daemon.request("alice", "MKCOL", "/dav-curl").status == 201

    put = daemon.request("alice", "PUT", path, "--data-binary", f"@{src}")
    assert put.status in (201, 204), put

    whole = daemon.request("alice", "GET", path)
    assert (whole.returncode, whole.status) == (0, 200)
    assert whole.body == data
    for first, last in [(100, 199), (0, 0), (CHUNK - 50, CHUNK + 49),
                        (CHUNK - 1, 2 * CHUNK), (len(data) - 10, len(data) - 1)]:
        r = daemon.request("alice", "GET", path, "-H", f"Range: bytes={first}-{last}")
        assert r.status == 206, (first, last, r)
        assert r.body == data[first:last + 1], (first, last)
    suffix = daemon.request("alice", "GET", path, "-H", "Range: bytes=-300")
    assert (suffix.status, suffix.body) == (206, data[-300:])


def test_curl_put_replaces_and_head_reports_size(daemon):
    path = "/dav-replace.txt"
    for content in (b"one\n", b"second version\n"):
        src = daemon.path("c")
        src.write_bytes(content)
        assert daemon.request("alice", "PUT", path, "--data-binary", f"@{src}").status in (201, 204)
    assert daemon.request("alice", "GET", path).body == b"second version\n"
    head = daemon.curl("alice", "-I", daemon.url(path))
    assert b"content-length: 15" in head.stdout.lower()


def _propfind(daemon, user, path, depth):
    r = daemon.request(user, "PROPFIND", path, "-H", f"Depth: {depth}",
                       "-H", "Content-Type: application/xml")
    assert r.status == 207, r
    found = {}
    for resp in ET.fromstring(r.body).iter(f"{DAV}response"):
        href = unquote(resp.find(f"{DAV}href").text)
        length = resp.find(f".//{DAV}getcontentlength")
        is_dir = resp.find(f".//{DAV}resourcetype/{DAV}collection") is not None
        found[href] = "dir" if is_dir else int(length.text)
    return found


def test_curl_propfind(daemon):
    files = {"/dav-pf/Übersicht März.txt": b"x" * 1000, "/dav-pf/a b/c d.txt": b"yy"}
    daemon.request("alice", "MKCOL", "/dav-pf")
    daemon.request("alice", "MKCOL", "/dav-pf/a b")
    for path, content in files.items():
        src = daemon.path("pf")
        src.write_bytes(content)
        assert daemon.request("alice", "PUT", path, "--data-binary", f"@{src}").status == 201

    one = _propfind(daemon, "alice", "/dav-pf/", 1)
    assert {k.rstrip("/"): v for k, v in one.items()} == {
        "/dav-pf": "dir", "/dav-pf/a b": "dir", "/dav-pf/Übersicht März.txt": 1000}
    zero = _propfind(daemon, "alice", "/dav-pf/a b/c d.txt", 0)
    assert zero == {"/dav-pf/a b/c d.txt": 2}


def test_curl_without_credentials_is_refused(daemon):
    r = daemon.request(None, "GET", "/")
    assert r.status == 401
    wrong = daemon.curl(None, "-o", "/dev/null", "-w", "%{http_code}", "-u",
                        "alice:not-the-password", daemon.url("/"))
    assert wrong.stdout == b"401"


def test_deleted_url_is_gone(daemon):
    src = daemon.path("d")
    src.write_bytes(b"bye")
    path = "/dav-gone " + quote("ä")  # a literal '%C3%A4' in the name, not 'ä'
    assert daemon.request("alice", "PUT", path, "--data-binary", f"@{src}").status == 201
    assert daemon.request("alice", "GET", path).body == b"bye"
    assert daemon.request("alice", "DELETE", path).status == 204
    assert daemon.request("alice", "GET", path).status == 404
