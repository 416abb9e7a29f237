"""WebDAV state that must outlive a request or a restart: locks, dead properties,
ETags; plus the HTML folder listing and the certificate made by init."""
import re
import subprocess

LOCKINFO = ('<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
            '</D:lockscope><D:locktype><D:write/></D:locktype><D:owner>e2e</D:owner></D:lockinfo>')
PROPPATCH = ('<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:e2e"><D:set>'
             '<D:prop><Z:colour>teal</Z:colour></D:prop></D:set></D:propertyupdate>')
PROPFIND = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:e2e"><D:prop>'
            '<Z:colour/><D:getetag/></D:prop></D:propfind>')


def _file(daemon, data: bytes):
    src = daemon.path("put-src")
    src.write_bytes(data)
    return src


def _put(daemon, user, path, data: bytes, *headers):
    r = daemon.request(user, "PUT", path, "-T", _file(daemon, data), *headers)
    assert r.status in (201, 204), r


def test_lock_blocks_others_and_survives_restart(daemon):
    _put(daemon, "alice", "/locked.txt", b"v1")
    r = daemon.request("alice", "LOCK", "/locked.txt", "-H", "Content-Type: application/xml",
                       "--data", LOCKINFO)
    assert r.status == 200, r
    token = re.search(rb"opaquelocktoken:[0-9a-fx]+", r.body).group().decode()
    daemon.restart()
    for user, path in (("alice", "/locked.txt"), ("staff", "/acme/locked.txt")):
        r = daemon.request(user, "PUT", path, "-T", _file(daemon, b"no"))
        assert r.status == 423, r
    _put(daemon, "alice", "/locked.txt", b"v2", "-H", f"If: (<{token}>)")
    r = daemon.request("alice", "UNLOCK", "/locked.txt", "-H", f"Lock-Token: <{token}>")
    assert r.status == 204, r
    assert daemon.request("alice", "GET", "/locked.txt").body == b"v2"


def test_same_name_in_another_client_is_not_locked(daemon):
    _put(daemon, "alice", "/shared-name.txt", b"a")
    _put(daemon, "bob", "/shared-name.txt", b"b")
    r = daemon.request("alice", "LOCK", "/shared-name.txt", "-H",
                       "Content-Type: application/xml", "--data", LOCKINFO)
    assert r.status == 200
    _put(daemon, "bob", "/shared-name.txt", b"b2")


def test_dead_property_survives_restart_and_rename(daemon):
    _put(daemon, "alice", "/props.txt", b"p")
    r = daemon.request("alice", "PROPPATCH", "/props.txt", "--data", PROPPATCH)
    assert r.status == 207 and b"200 OK" in r.body, r
    daemon.restart()
    r = daemon.request("alice", "MOVE", "/props.txt", "-H",
                       f"Destination: {daemon.url('/props-moved.txt')}")
    assert r.status == 201, r
    r = daemon.request("alice", "PROPFIND", "/props-moved.txt", "-H", "Depth: 0",
                       "--data", PROPFIND)
    assert r.status == 207 and b"teal" in r.body, r.body


def test_etag_changes_with_content_and_conditional_get(daemon):
    _put(daemon, "alice", "/etag.txt", b"one")
    first = daemon.curl("alice", "-sI", daemon.url("/etag.txt")).stdout.decode()
    etag = re.search(r'(?i)^etag:\s*(\S+)', first, re.M).group(1)
    r = daemon.request("alice", "GET", "/etag.txt", "-H", f"If-None-Match: {etag}")
    assert r.status == 304
    _put(daemon, "alice", "/etag.txt", b"two")
    second = daemon.curl("alice", "-sI", daemon.url("/etag.txt")).stdout.decode()
    assert re.search(r'(?i)^etag:\s*(\S+)', second, re.M).group(1) != etag


def test_folder_get_is_an_html_listing(daemon):
    daemon.request("alice", "MKCOL", "/listing")
    _put(daemon, "alice", "/listing/report.pdf", b"%PDF")
    r = daemon.request("alice", "GET", "/listing/")
    assert r.status == 200 and b"<html" in r.body.lower() and b"report.pdf" in r.body


def test_certificate_from_init_verifies_for_the_host(daemon):
    """Without -k: the self-signed certificate's SAN must match 127.0.0.1; TLS < 1.2 refused."""
    cert = daemon.data_dir / "tls" / "cert.pem"
    u = daemon.users["alice"]
    base = ["curl", "-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}",
            "-u", f"{u.login}:{u.password}"]
    strict = subprocess.run([*base, "--cacert", str(cert), daemon.url("/")],
                            capture_output=True, timeout=60)
    assert strict.returncode == 0 and strict.stdout == b"200", strict.stderr
    old = subprocess.run([*base, "-k", "--tls-max", "1.1", daemon.url("/")],
                         capture_output=True, timeout=60)
    assert old.returncode != 0
