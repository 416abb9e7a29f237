"""Editors' saves against the real daemon keep one version history: MS Word's sequence
over WebDAV (python requests, as the Windows mini-redirector sends it) and vim's over
SFTP (OpenSSH sftp), checked with `strongroom versions list` and `trash list`
(appliance.service.saving)."""
import json

import pytest
import requests

from tests.support.daemon import sftp_quote

# Three contents of distinct sizes: the versions list shows which is which.
V1, V2, V3 = b"1" * 10, b"2" * 20, b"3" * 30


@pytest.fixture
def dav(daemon):
    """A WebDAV client logged in as alice (acme, no TOTP); `dav.url(name)` is the URL
    of a file at the top of her tree."""
    alice = daemon.users["alice"]
    s = requests.Session()
    s.verify, s.trust_env = False, False
    s.auth = (alice.login, alice.password)
    s.url = lambda name: f"{daemon.base_url}/{name}"
    yield s
    s.close()


def call(s, method, name, status, **kw):
    r = s.request(method, s.url(name), timeout=60, **kw)
    assert r.status_code in status, f"{method} {name}: {r.status_code} {r.text[:300]}"
    return r


LOCK_BODY = ('<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
             '<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>'
             '<D:owner><D:href>alice</D:href></D:owner></D:lockinfo>')


def word_save(s, name, content):
    """What Word sends over WebDAV to save `name`: an empty temporary file, locked, its
    content put under the lock, then the document moved away, the temporary moved onto
    its name, and the old document deleted."""
    base = f"<{s.url('')}"
    call(s, "PUT", "~WRD0000.tmp", (201, 204), data=b"")
    lock = call(s, "LOCK", "~WRD0000.tmp", (200,), data=LOCK_BODY,
                headers={"Timeout": "Second-180", "Content-Type": "text/xml"})
    token = lock.headers["Lock-Token"]
    call(s, "PUT", "~WRD0000.tmp", (201, 204), data=content,
         headers={"If": f"{base}~WRD0000.tmp> ({token})"})
    call(s, "UNLOCK", "~WRD0000.tmp", (204,), headers={"Lock-Token": token})
    call(s, "MOVE", name, (201, 204), headers={"Destination": s.url("~WRL0001.tmp"),
                                               "Overwrite": "T"})
    call(s, "MOVE", "~WRD0000.tmp", (201, 204), headers={"Destination": s.url(name),
                                                         "Overwrite": "T"})
    call(s, "DELETE", "~WRL0001.tmp", (204,))


def versions(daemon, path):
    out = daemon.cli("versions", "list", path, "--json", check=True).stdout
    return [(v["size"], v["current"]) for v in json.loads(out)]


def trashed(daemon):
    out = daemon.cli("trash", "list", "/acme", "--json", check=True).stdout
    return sorted(item["original"] for item in json.loads(out))


def test_word_over_webdav_keeps_the_documents_history(daemon, dav):
    for content in (V1, V2):
        call(dav, "PUT", "report.docx", (201, 204), data=content)
    call(dav, "PUT", "~$report.docx", (201, 204), data=b"owner")
    word_save(dav, "report.docx", V3)
    call(dav, "DELETE", "~$report.docx", (204,))
    assert call(dav, "GET", "report.docx", (200,)).content == V3
    call(dav, "GET", "~WRL0001.tmp", (404,))
    assert versions(daemon, "/acme/report.docx") == [(10, False), (20, False), (30, True)]
    assert "/acme/~WRL0001.tmp" not in trashed(daemon)     # no copy of the history there
    assert "/acme/~$report.docx" in trashed(daemon)        # litter deleted: the trash as any


def test_vim_over_sftp_keeps_the_files_history(daemon):
    local = {}
    for name, data in (("v1", V1), ("v2", V2), ("v3", V3), ("empty", b"")):
        local[name] = daemon.path(name)
        local[name].write_bytes(data)
    q = sftp_quote
    steps = [
        f"put {q(local['v1'])} notes.txt", f"put {q(local['v2'])} notes.txt",
        f"put {q(local['empty'])} 4913", "rm 4913",              # may vim create files here?
        "rename notes.txt notes.txt~",                          # keep the original as backup
        f"put {q(local['v3'])} notes.txt",                       # write the file anew
        "rm notes.txt~",                                         # the backup is not kept
    ]
    r = daemon.run_sftp("alice", steps)
    assert r.returncode == 0, r.stderr.decode("utf-8", "replace")
    assert versions(daemon, "/acme/notes.txt") == [(10, False), (20, False), (30, True)]
    assert "/acme/notes.txt~" not in trashed(daemon)


def test_litter_over_webdav_keeps_one_version(daemon, dav):
    for content in (V1, V2, V3):
        call(dav, "PUT", ".DS_Store", (201, 204), data=content)
    assert versions(daemon, "/acme/.DS_Store") == [(30, True)]
