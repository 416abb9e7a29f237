"""A user's file never runs as a page of this origin (the web portal will share it):
every response carries nosniff and a sandboxing CSP, and files a browser would render
(HTML, SVG, XML, and every other) are sent as attachments, with their names in
RFC 6266 form; error pages name no software or version."""
import pytest

from tests.support.daemon import running_daemon

PAGE = b"<html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-headers")


def _headers(daemon, method, path, *args):
    out = daemon.path("headers")
    r = daemon.request("alice", method, path, "-D", str(out), *args)
    lines = out.read_text("latin-1").splitlines() if out.exists() else []
    return r, {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:] if ":" in line)}


@pytest.mark.parametrize("name,data", [("page.html", PAGE), ("Bild ä.svg", SVG),
                                       ("feed.xml", b"<a/>"), ("notes.txt", b"plain"),
                                       ("news.rss", b"<rss/>"), ("page.mht", PAGE)])
def test_files_are_never_rendered_as_pages(daemon, name, data):
    src = daemon.path("src")
    src.write_bytes(data)
    assert daemon.request("alice", "PUT", f"/{name}", "-T", src).status == 201
    for method in ("GET", "HEAD"):
        r, h = _headers(daemon, method, f"/{name}", *(("-I",) if method == "HEAD" else ()))
        assert r.status == 200
        assert h["x-content-type-options"] == "nosniff"
        assert h["content-security-policy"] == "sandbox"
        assert h["content-disposition"].startswith("attachment; filename=")
    if name == "Bild ä.svg":
        assert "filename*=UTF-8''Bild%20%C3%A4.svg" in h["content-disposition"]


def test_errors_and_listings_carry_the_headers_too(daemon):
    for method, path, status in (("GET", "/missing.html", 404), ("PROPFIND", "/", 207),
                                 ("GET", "/", 200)):
        r, h = _headers(daemon, method, path, *(("-H", "Depth: 1") if method == "PROPFIND"
                                                else ()))
        assert r.status == status
        assert h["x-content-type-options"] == "nosniff" and h["content-security-policy"] == \
            "sandbox"


def test_error_pages_name_no_software(daemon):
    for method, path in (("GET", "/missing.txt"), ("PROPFIND", "/missing")):
        r = daemon.request("alice", method, path, "-H", "Depth: 0")
        assert r.status == 404
        assert b"WsgiDAV" not in r.body and b"wsgidav" not in r.body.lower()
