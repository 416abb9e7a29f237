"""The portal's transfers and its answers to bad input, against the real daemon:
Range downloads, a folder as one zip, uploads cut off mid-body, oversized forms, a
multipart body without its boundary, upload names that are paths, paths outside
the user's view in any parameter or field. Every refusal is a clear status and page,
one log line, no traceback, nothing stored or changed.
"""
import io
import os
import re
import socket
import ssl
import time
import zipfile

import pytest

from tests.support.daemon import HOST, running_daemon
from tests.support.portal import PortalClient, unique, with_app_password

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
BIG = os.urandom(200_000)       # spans several encrypted chunks


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-portal-files")


@pytest.fixture(scope="module")
def client(daemon):
    c = PortalClient(daemon, daemon.add_user(unique("tina")))
    c.login()
    yield c
    c.close()


@pytest.fixture(scope="module")
def dav(daemon, client):
    return with_app_password(daemon, client.user)


def _new_log(daemon, since):
    time.sleep(0.3)
    return [line for line in daemon.log_text()[since:].splitlines() if line.strip()]


# -- Range ------------------------------------------------------------------------------

def test_single_suffix_and_open_ranges(daemon, client):
    assert client.upload("/", {"big.bin": BIG}).status_code == 303
    size = len(BIG)
    cases = {"bytes=10-19": (10, 20), "bytes=65530-65545": (65530, 65546),
             "bytes=-100": (size - 100, size), f"bytes={size - 10}-": (size - 10, size),
             f"bytes=0-{size + 500}": (0, size)}
    for spec, (start, end) in cases.items():
        r = client.download("/big.bin", headers={"Range": spec})
        if (start, end) == (0, size):
            assert r.status_code in (200, 206) and r.content == BIG, spec
            continue
        assert r.status_code == 206, spec
        assert r.content == BIG[start:end], spec
        assert r.headers["Content-Range"] == f"bytes {start}-{end - 1}/{size}", spec
        assert int(r.headers["Content-Length"]) == end - start


@pytest.mark.parametrize("spec", ["bytes=200000-", "bytes=300000-300010"])
def test_an_unsatisfiable_range_is_416_with_the_size(daemon, client, spec):
    client.upload("/", {"big.bin": BIG})
    r = client.download("/big.bin", headers={"Range": spec})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{len(BIG)}"


def test_if_range_with_a_stale_etag_gives_the_whole_file(daemon, client):
    client.upload("/", {"ir.bin": b"old content"})
    stale = client.download("/ir.bin").headers["ETag"]
    client.upload("/", {"ir.bin": BIG})
    current = client.download("/ir.bin").headers["ETag"]
    assert stale != current
    r = client.download("/ir.bin", headers={"Range": "bytes=0-9", "If-Range": stale})
    assert r.status_code == 200 and r.content == BIG
    r = client.download("/ir.bin", headers={"Range": "bytes=0-9", "If-Range": current})
    assert r.status_code == 206 and r.content == BIG[:10]


# -- a folder as a zip -------------------------------------------------------------------

def test_a_folder_downloads_as_a_valid_zip_without_the_views(daemon, client):
    files = {"z/a.txt": b"first\n", "z/sub/b.bin": BIG,
             "z/sub/deeper/Grüße ünïcödé.txt": "non-ASCII name\n".encode(),
             "z/שלום/קובץ.txt": b"hebrew\n"}
    for folder in ("/z", "/z/sub", "/z/sub/deeper", "/z/שלום", "/z/empty"):
        parent, name = folder.rsplit("/", 1)
        client.post("/mkdir", {"name": name}, {"p": parent or "/"})
    for path, data in files.items():
        folder, name = ("/" + path).rsplit("/", 1)
        assert client.upload(folder, {name: data}).status_code == 303
    client.upload("/z", {"a.txt": b"second\n"})            # a version of it
    client.upload("/z", {"gone.txt": b"trash"})
    client.post("/delete", params={"p": "/z/gone.txt"})  # something in the trash
    r = client.get("/zip", {"p": "/z"})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/zip"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="z.zip"')
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert zf.testzip() is None
        names = set(zf.namelist())
        got = {n: zf.read(n) for n in names if not n.endswith("/")}
    expected = {p[len("z/"):]: d for p, d in files.items()}
    expected["a.txt"] = b"second\n"
    assert got == expected
    assert {"sub/", "sub/deeper/", "empty/", "שלום/"} <= names
    whole = client.get("/zip", {"p": "/"})
    assert whole.status_code == 200
    with zipfile.ZipFile(io.BytesIO(whole.content)) as zf:
        everything = zf.namelist()
    assert "z/sub/b.bin" in everything
    assert not [n for n in everything + list(names) if "@versions" in n or "@trash" in n]


# -- uploads cut off -----------------------------------------------------------------------

def _raw_post(daemon, client, target, head_extra, body, send):
    """POST `body` (only its first `send` bytes) on a raw TLS socket, then close."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    cookies = "; ".join(f"{k}={v}" for k, v in client.http.cookies.items())
    head = (f"POST {target} HTTP/1.1\r\nHost: {HOST}:{daemon.webdav_port}\r\n"
            f"Cookie: {cookies}\r\nContent-Length: {len(body)}\r\n{head_extra}\r\n").encode()
    with socket.create_connection((HOST, daemon.webdav_port), timeout=30) as raw:
        with ctx.wrap_socket(raw) as s:
            s.sendall(head + body[:send])
            time.sleep(0.5)


def _multipart(boundary, csrf, name, data):
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() \
        + data + f"\r\n--{boundary}--\r\n".encode()


def test_a_dropped_upload_leaves_no_partial_version(daemon, client, dav):
    client.upload("/", {"kept.bin": b"the previous version\n"})
    versions = len(re.findall(r"v=\d+", client.get("/item", {"p": "/kept.bin"}).text))
    boundary = "dropdropdrop"
    body = _multipart(boundary, client.csrf, "kept.bin", BIG * 5)
    _raw_post(daemon, client, "/web/upload?p=%2F",
              f"Content-Type: multipart/form-data; boundary={boundary}\r\n", body,
              len(body) // 2)
    body = _multipart(boundary, client.csrf, "new-never.bin", BIG * 5)
    _raw_post(daemon, client, "/web/upload?p=%2F",
              f"Content-Type: multipart/form-data; boundary={boundary}\r\n", body,
              len(body) // 2)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:      # the daemon notices the close, then aborts
        r = daemon.request(dav, "GET", "/kept.bin")
        if r.status == 200 and not list(daemon.staging_dir.glob("*")):
            break
        time.sleep(0.5)
    assert r.status == 200 and r.body == b"the previous version\n"
    assert daemon.request(dav, "GET", "/new-never.bin").status == 404
    after = len(re.findall(r"v=\d+", client.get("/item", {"p": "/kept.bin"}).text))
    assert after == versions
    assert "new-never.bin" not in client.listing("/").text


# -- bad input ------------------------------------------------------------------------------

def test_an_oversized_form_is_413_with_one_log_line(daemon, client):
    since = len(daemon.log_text())
    r = client.post("/mkdir", {"name": "x" * (70 * 1024)}, {"p": "/"})
    assert r.status_code == 413 and "Traceback" not in r.text
    assert "x" * 100 not in client.listing("/").text
    anonymous = PortalClient(daemon)
    r = anonymous.post("/login", {"login": "a", "password": "p" * (70 * 1024)}, csrf=False)
    assert r.status_code == 413
    lines = _new_log(daemon, since)
    assert len([line for line in lines if "413" in line or "too large" in line.lower()]) == 2, \
        lines


def test_a_multipart_body_without_its_boundary_is_400(daemon, client):
    since = len(daemon.log_text())
    body = _multipart("b0undary", client.csrf, "nob.txt", b"no boundary")
    for kind in ("multipart/form-data", "multipart/form-data; boundary=",
                 "multipart/mixed; boundary=b0undary"):
        r = client.http.post(client.url("/upload"), params={"p": "/"}, data=body,
                             headers={"Content-Type": kind, "X-CSRF-Token": client.csrf},
                             allow_redirects=False, timeout=60)
        assert r.status_code == 400, (kind, r.status_code)
        assert "Traceback" not in r.text and "boundary" in r.text
    assert "nob.txt" not in client.listing("/").text
    lines = _new_log(daemon, since)
    assert len([line for line in lines if "POST /upload" in line]) == 3, lines


@pytest.mark.parametrize("name", ["a/b.txt", "a\\b.txt", "nul\x00.txt", "..", ".", "../up.txt",
                                  "/abs.txt", " "])
def test_an_upload_name_that_is_a_path_is_refused(daemon, client, name):
    client.post("/mkdir", {"name": "names"}, {"p": "/"})
    before = client.listing("/names").text, client.listing("/").text
    since = len(daemon.log_text())
    boundary = "n4mes"
    body = _multipart(boundary, client.csrf, name, b"should not be stored")
    r = client.http.post(client.url("/upload"), params={"p": "/names"}, data=body,
                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                         allow_redirects=False, timeout=60)
    assert r.status_code == 400, r.status_code
    assert "Traceback" not in r.text and "<h1>" in r.text
    assert (client.listing("/names").text, client.listing("/").text) == before
    lines = [line for line in _new_log(daemon, since) if "/upload" in line]
    assert len(lines) == 1, lines


@pytest.fixture(scope="module")
def secret(daemon):
    """A file of another client's tree (bob, client beta) and a staff user of acme only."""
    src = daemon.path("secret")
    src.write_bytes(b"beta's secret\n")
    assert daemon.request("bob", "PUT", "/secret.txt", "-T", src).status == 201
    staff = daemon.add_user(unique("sara"), None)
    daemon.cli("acl", "grant", "/acme", "--user", staff.login, "--rights",
               "read,write,delete,manage", check=True)
    return staff


OUTSIDE = ["/../beta/secret.txt", "/../../beta/secret.txt", "/beta/secret.txt",
           "/./../beta/secret.txt", "//beta/secret.txt"]


def _beta_unchanged(daemon):
    r = daemon.request("bob", "PROPFIND", "/", "-H", "Depth: 1")
    return r.status == 207 and b"secret.txt" in r.body and b"stolen" not in r.body and \
        daemon.request("bob", "GET", "/secret.txt").body == b"beta's secret\n"


@pytest.mark.parametrize("who", ["client", "staff"])
def test_a_path_outside_the_view_is_refused_everywhere(daemon, client, secret, who):
    c = client
    if who == "staff":
        c = PortalClient(daemon, secret)
        c.login()
    own = "/acme" if who == "staff" else ""
    c.upload(own + "/", {"mine.txt": b"mine"})
    for p in OUTSIDE:
        for route in ("/download", "/item", "/files", "/zip"):
            r = c.get(route, {"p": p})
            assert r.status_code in (400, 403, 404), (route, p, r.status_code)
            assert b"beta's secret" not in r.content, (route, p)
        for route, form in (("/delete", {}), ("/mkdir", {"name": "stolen"}),
                            ("/rename", {"to": own + "/stolen.txt"}),
                            ("/restore", {"version": "1"}), ("/untrash", {})):
            r = c.post(route, form, {"p": p})
            # 409: no such parent folder in the user's own tree (as WebDAV's MKCOL)
            assert r.status_code in (400, 403, 404, 409), (route, p, r.status_code)
        r = c.upload(p.rsplit("/", 1)[0] or "/", {"stolen.txt": b"x"})
        assert r.status_code in (400, 403, 404, 409), (p, r.status_code)
        r = c.post("/rename", {"to": p.replace("secret", "stolen")}, {"p": own + "/mine.txt"})
        assert r.status_code in (400, 403, 404, 409), (p, r.status_code)
        assert "Traceback" not in r.text
    raw = c.http.get(c.base + "/web/download?p=/%2e%2e/beta/secret.txt", timeout=60,
                     allow_redirects=False)
    assert raw.status_code in (400, 403, 404) and b"beta's secret" not in raw.content
    raw = c.http.get(c.base + "/web/%2e%2e/web/download?p=/beta/secret.txt", timeout=60,
                     allow_redirects=False)
    assert b"beta's secret" not in raw.content
    assert c.download(own + "/mine.txt").content == b"mine"
    assert "stolen" not in c.listing(own or "/").text
    assert _beta_unchanged(daemon)


def test_no_traceback_in_the_log(daemon):
    assert "Traceback" not in daemon.log_text()
