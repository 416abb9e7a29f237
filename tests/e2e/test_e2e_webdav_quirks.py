"""What network-drive clients do that plain WebDAV clients don't, and bad input:
each refusal is a complete short 4xx, one log line, nothing written."""
import time

import pytest

PROPFIND0 = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
XXE = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       '<D:propfind xmlns:D="DAV:"><D:prop><D:getetag>&x;</D:getetag></D:prop></D:propfind>')
WIN_PROPPATCH = ('<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" '
                 'xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>'
                 '<Z:Win32LastModifiedTime>Wed, 01 Jan 2020 10:00:00 GMT</Z:Win32LastModifiedTime>'
                 '<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>'
                 '</D:prop></D:set></D:propertyupdate>')


def _file(daemon, data: bytes):
    p = daemon.path("src")
    p.write_bytes(data)
    return p


def test_options_on_root_without_credentials(daemon):
    r = daemon.curl(None, "-X", "OPTIONS", "-i", "-o", "-", daemon.url("/"))
    head = r.stdout.decode()
    assert head.startswith("HTTP/1.1 200"), head
    assert "DAV: 1, 2" in head and "MS-Author-Via: DAV" in head


def test_options_with_credentials_and_ms_author_via(daemon):
    r = daemon.curl("alice", "-X", "OPTIONS", "-i", "-o", "-", daemon.url("/"))
    head = r.stdout.decode()
    assert head.startswith("HTTP/1.1 200") and "MS-Author-Via: DAV" in head


def test_lock_on_unmapped_url_creates_locked_empty_file(daemon):
    r = daemon.request("alice", "LOCK", "/lock-null.docx", "-H", "Content-Type: application/xml",
                       "--data", '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope>'
                       '<D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>'
                       '</D:lockinfo>')
    assert r.status in (200, 201), r
    assert daemon.request("bob", "GET", "/lock-null.docx").status == 404  # bob's tree
    got = daemon.request("alice", "GET", "/lock-null.docx")
    assert got.status == 200 and got.body == b""
    assert daemon.request("alice", "PUT", "/lock-null.docx", "-T", _file(daemon, b"x")).status \
        == 423


def test_chunked_put_without_content_length(daemon):
    data = bytes(range(256)) * 40000  # 10 MB
    r = daemon.request("alice", "PUT", "/chunked.bin", "-H", "Transfer-Encoding: chunked",
                       "-T", _file(daemon, data))
    assert r.status == 201, r
    assert daemon.request("alice", "GET", "/chunked.bin").body == data


def test_folder_without_slash_is_served_not_redirected(daemon):
    daemon.request("alice", "MKCOL", "/noslash")
    for method, args in (("GET", ()), ("PROPFIND", ("-H", "Depth: 1"))):
        r = daemon.request("alice", method, "/noslash", *args)
        assert r.status in (200, 207), (method, r)


def test_x_oc_mtime_honoured_and_malformed_ignored(daemon):
    r = daemon.request("alice", "PUT", "/mtime.txt", "-H", "X-OC-Mtime: 1500000000",
                       "-T", _file(daemon, b"m"))
    assert r.status == 201
    head = daemon.curl("alice", "-sI", daemon.url("/mtime.txt")).stdout.decode()
    assert "Last-Modified: Fri, 14 Jul 2017 02:40:00 GMT" in head
    r = daemon.request("alice", "PUT", "/mtime2.txt", "-H", "X-OC-Mtime: yesterday",
                       "-T", _file(daemon, b"m"))
    assert r.status == 201


def test_windows_proppatch_accepted(daemon):
    daemon.request("alice", "PUT", "/win.txt", "-T", _file(daemon, b"w"))
    r = daemon.request("alice", "PROPPATCH", "/win.txt", "--data", WIN_PROPPATCH)
    assert r.status == 207 and b"HTTP/1.1 200" in r.body and b"HTTP/1.1 4" not in r.body
    head = daemon.curl("alice", "-sI", daemon.url("/win.txt")).stdout.decode()
    assert "Last-Modified: Wed, 01 Jan 2020 10:00:00 GMT" in head


def test_quota_properties_report_the_clients_quota(daemon):
    body = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-used-bytes/>'
            '<D:quota-available-bytes/></D:prop></D:propfind>')
    r = daemon.request("alice", "PROPFIND", "/", "-H", "Depth: 0", "--data", body)
    assert r.status == 207
    used = int(r.body.split(b"quota-used-bytes>")[1].split(b"<")[0])
    avail = int(r.body.split(b"quota-available-bytes>")[1].split(b"<")[0])
    assert used + avail == 10 * 1024**3  # the fixture's client quota


BAD = [
    ("malformed-xml", "PROPFIND", "/", ("-H", "Depth: 0", "--data", "<D:propfind xmlns:D")),
    ("xxe", "PROPFIND", "/", ("-H", "Depth: 0", "--data", XXE)),
    ("depth-infinity", "PROPFIND", "/", ("-H", "Depth: infinity", "--data", PROPFIND0)),
    ("dotdot", "PUT", "/../x.txt", ("-T", "SRC")),
    ("encoded-dotdot", "PUT", "/%2e%2e/x.txt", ("-T", "SRC")),
    ("nul", "PUT", "/a%00b.txt", ("-T", "SRC")),
    ("overlong-name", "PUT", "/" + "n" * 300, ("-T", "SRC")),
    ("invalid-utf8", "PUT", "/bad%ff%fe.txt", ("-T", "SRC")),
    ("bad-mkcol", "MKCOL", "/a%01dir", ()),
]


@pytest.mark.parametrize("name, method, path, args", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_short_4xx_one_log_line_nothing_written(daemon, name, method, path,
                                                               args):
    args = tuple(str(_file(daemon, b"payload")) if a == "SRC" else a for a in args)
    before = _tree(daemon)
    log_before = len(daemon.log_text())
    r = daemon.request("alice", method, path, *args, raw=True, max_time=20)
    assert 400 <= r.status < 500, r
    assert len(r.body) < 4096 and b"Traceback" not in r.body
    time.sleep(0.2)
    new_log = daemon.log_text()[log_before:]
    assert "Traceback" not in new_log
    assert len([line for line in new_log.splitlines() if line.strip()]) == 1, new_log
    assert _tree(daemon) == before


def test_fifty_megabyte_propfind_body_refused(daemon):
    big = daemon.path("big.xml")
    with open(big, "wb") as f:
        f.write(b"<" * (50 * 1024 * 1024))
    for extra in ((), ("-H", "Transfer-Encoding: chunked")):
        r = daemon.request("alice", "PROPFIND", "/", "-H", "Depth: 0", *extra,
                           "--data-binary", f"@{big}", max_time=60)
        assert r.status == 413, r


def _tree(daemon) -> bytes:
    r = daemon.request("staff", "PROPFIND", "/acme/", "-H", "Depth: 1", "--data", PROPFIND0)
    assert r.status == 207
    import re
    return b"\n".join(sorted(re.findall(rb"<ns0:href>([^<]*)</ns0:href>", r.body)))
