"""The web portal's security properties against the real daemon, with python
`requests` as the browser (tests/support/portal.py): the headers of every page and
download, the session cookie and its life (new id at login, logout, restart),
logging in (by name or email, one answer for every failure, a code used once on
every protocol, throttling, audit events of protocol "web"), CSRF refusals, and
file names that try to be HTML.
"""
import json
import re
import time
from urllib.parse import quote, unquote

import paramiko
import pytest
import requests

from tests.support.daemon import HOST, running_daemon
from tests.support.portal import CODES, SESSION_COOKIE, PortalClient, unique, with_app_password

BLOCK_AFTER = 4
pytestmark = [pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
              pytest.mark.slow]     # started first (tests/conftest.py)
XSS = "<img src=x onerror=alert(1)>.html"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    # every login here comes from 127.0.0.1: keep the address counter out of the way
    yield from running_daemon(tmp_path_factory, "e2e-portal-sec", {
        "auth": {"address_block_after": 10000, "address_delay_after": 10000,
                 "account_block_after": BLOCK_AFTER, "delay": "0s"}})


@pytest.fixture
def user(daemon):
    return daemon.add_user(unique("tina"))


@pytest.fixture
def client(daemon, user):
    c = PortalClient(daemon, user)
    c.login()
    yield c
    c.close()


def _audit(daemon, login, action=None):
    args = ("--action", action) if action else ()
    out = daemon.cli("audit", "list", "--user", login, *args, "--all", "--json", check=True)
    return json.loads(out.stdout)


# -- headers ---------------------------------------------------------------------------

def _assert_page_headers(r):
    csp = r.headers.get("Content-Security-Policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, (r.url, csp)
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", (r.url, csp)
    assert directives.get("default-src") == "default-src 'self'", (r.url, csp)
    assert r.headers.get("X-Content-Type-Options") == "nosniff", r.url
    assert r.headers.get("Referrer-Policy") == "no-referrer", r.url


def test_every_portal_page_carries_the_security_headers(daemon, client):
    client.upload("/", {"h.txt": b"headers"})
    anonymous = PortalClient(daemon)
    answers = [anonymous.get("/login"), anonymous.get("/"), anonymous.get("/files"),
               anonymous.get("/no-such-page"), anonymous.post("/login", {}, csrf=False),
               anonymous.get("/static/portal.css"),
               client.get("/files", {"p": "/"}), client.get("/item", {"p": "/h.txt"}),
               client.get("/trash"), client.get("/account"), client.get("/files", {"p": "/nope"}),
               client.post("/mkdir", {"name": "x"}, {"p": "/"}, csrf=False),
               client.get("/files", {"p": "nope"})]
    statuses = {r.status_code for r in answers}
    assert {200, 303, 403, 404}.issubset(statuses), statuses
    for r in answers:
        _assert_page_headers(r)
    assert "Traceback" not in "".join(r.text for r in answers)


def _disposition_names(header):
    """(filename, filename*) of a Content-Disposition, as RFC 6266 parses them."""
    m = re.fullmatch(r'attachment; filename="((?:[^"\\]|\\.)*)"; '
                     r"filename\*=UTF-8''([A-Za-z0-9!#$&+.^_`|~%-]*)", header)
    assert m, header
    return m.group(1), unquote(m.group(2), encoding="utf-8", errors="strict")


@pytest.mark.parametrize("name", ["Rechnung März.pdf", 'say "hi" 100%.txt', "שלום.txt"])
def test_downloads_are_attachments_with_rfc6266_names(daemon, client, name):
    assert client.upload("/", {name: b"%PDF-1.4 invoice"}).status_code == 303
    r = client.download("/" + name)
    assert r.status_code == 200 and r.content == b"%PDF-1.4 invoice"
    fallback, utf8 = _disposition_names(r.headers["Content-Disposition"])
    assert utf8 == name
    assert fallback.isascii() and '"' not in fallback and "\\" not in fallback
    assert r.headers["Content-Security-Policy"] == "sandbox"
    assert r.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name,data", [
    ("page.html", b"<html><script>alert(1)</script></html>"),
    ("pic.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    ("page.htm", b"<script>alert(1)</script>")])
def test_a_users_html_and_svg_are_never_served_inline(daemon, client, name, data):
    assert client.upload("/", {name: data}).status_code == 303
    client.upload("/", {name: data + b" "})        # a second version
    versions = re.findall(r"v=(\d+)", client.get("/item", {"p": "/" + name}).text)
    assert len(versions) >= 2
    answers = [client.download("/" + name), client.get("/download", {"p": "/" + name, "v": versions[-1]}),
               client.get("/download", {"p": "/" + name}, headers={"Range": "bytes=0-5"})]
    for r in answers:
        assert r.status_code in (200, 206), r.status_code
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert r.headers["Content-Disposition"].startswith("attachment;")
        assert r.headers["Content-Security-Policy"] == "sandbox"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    # the portal's static route serves only its own files
    assert client.get("/static/" + name).status_code == 404
    assert client.get("/static/..%2F..%2F" + name).status_code == 404


# -- the session cookie --------------------------------------------------------------

def _set_cookies(r):
    return r.raw.headers.getlist("Set-Cookie")


def test_the_session_cookie_is_host_prefixed_secure_httponly_strict(daemon, user):
    c = PortalClient(daemon, user)
    r = c.try_login()
    assert r.status_code == 303
    session = [h for h in _set_cookies(r) if h.startswith(SESSION_COOKIE + "=")]
    assert len(session) == 1, _set_cookies(r)
    attrs = {a.strip().split("=")[0].lower(): a.strip() for a in session[0].split(";")[1:]}
    assert {"secure", "httponly", "samesite", "path"} <= set(attrs), session
    assert attrs["samesite"].lower() == "samesite=strict"
    assert attrs["path"] == "Path=/"
    assert "domain" not in attrs        # a __Host- cookie has none
    assert SESSION_COOKIE.startswith("__Host-")
    for header in _set_cookies(r):      # every cookie of the login: Secure, Path=/
        assert "Secure" in header and "Path=/" in header, header


def test_a_new_session_id_at_every_login(daemon, user):
    planted = "planted-" + "A" * 40
    c = PortalClient(daemon, user)
    c.http.cookies.set(SESSION_COOKIE, planted, domain=HOST, path="/")
    assert c.get("/files").status_code == 303        # the planted id is no session
    c.login()
    first = c.session_id
    assert first and first != planted
    other = PortalClient(daemon)
    other.http.cookies.set(SESSION_COOKIE, planted, domain=HOST, path="/")
    assert other.get("/files").status_code == 303
    c.logout()
    c.login()
    assert c.session_id not in (first, planted)
    again = PortalClient(daemon, user)
    again.http.cookies.set(SESSION_COOKIE, planted, domain=HOST, path="/")
    again.login()
    assert again.session_id not in (first, planted, c.session_id)


def test_logout_ends_the_session_on_the_server(daemon, client):
    kept = client.session_id
    r = client.logout()
    assert r.status_code == 200
    assert any(h.startswith(SESSION_COOKIE + "=;") for h in _set_cookies(r))
    replay = PortalClient(daemon)
    replay.http.cookies.set(SESSION_COOKIE, kept, domain=HOST, path="/")
    r = replay.get("/files")
    assert r.status_code == 303 and "/web/login" in r.headers["Location"]
    assert replay.post("/mkdir", {"name": "after-logout"}, {"p": "/"},
                       csrf=False).status_code == 401
    assert _audit(daemon, client.user.login, "logout")


def test_the_session_survives_a_daemon_restart(daemon, client):
    daemon.restart()
    r = client.get("/files")
    assert r.status_code == 200
    assert client.post("/mkdir", {"name": "after-restart"}, {"p": "/"}).status_code == 303
    assert "after-restart/" in client.listing("/").text


def test_no_header_of_the_senders_through_a_redirect_target(daemon, user):
    evil = "/web/%0d%0aX-Evil:%201%0d%0aSet-Cookie:%20__Host-sr_session=fixed;%20Path=/"
    c = PortalClient(daemon, user)
    r = c.http.get(f"{daemon.base_url}/web/lang?to=en&next={evil}", allow_redirects=False,
                   timeout=60)
    assert r.status_code == 303 and "X-Evil" not in r.headers
    assert "\r" not in r.headers["Location"] and "\n" not in r.headers["Location"]
    first = c.start_login(user.login, user.password)
    r = c.http.post(f"{daemon.base_url}/web/login/code?next={evil}", allow_redirects=False,
                    data={"code": CODES.next(user), "csrf": c.http.cookies.get("__Host-sr_pre")},
                    timeout=60)
    assert first.status_code == 200 and r.status_code == 303
    assert "X-Evil" not in r.headers
    assert c.session_id != "fixed" and c.get("/files").status_code == 200


# -- logging in -----------------------------------------------------------------------

def test_login_by_login_name_or_email_address(daemon, user):
    email = f"{user.login}@example.org"
    daemon.cli("user", "set", user.login, "--email", email, check=True)
    by_name = PortalClient(daemon, user)
    by_name.login()
    by_email = PortalClient(daemon, user)
    by_email.login(name=email.upper())
    assert by_email.listing("/").status_code == 200
    assert by_email.session_id != by_name.session_id


def _refusal(r):
    text = re.sub(r'value="[^"]*"', 'value=""', r.text)     # the login typed, the form token
    return r.status_code, text


def test_one_answer_for_unknown_account_wrong_password_and_wrong_code(daemon, user):
    def attempt(name, password, code="000000"):
        return PortalClient(daemon, user).try_login(name, password, code)
    wrong_code = f"{(int(CODES.next(user)) + 1) % 1000000:06d}"
    answers = {"unknown": attempt("nobody-" + user.login[4:], user.password),
               "password": attempt(user.login, user.password + "x"),
               "code": attempt(user.login, user.password, wrong_code)}
    refusals = {k: _refusal(r) for k, r in answers.items()}
    assert refusals["unknown"][0] == 401, refusals["unknown"][0]
    assert refusals["unknown"] == refusals["password"] == refusals["code"]
    daemon.cli("user", "unlock", user.login, check=True)


def test_a_code_is_accepted_once_on_every_protocol(daemon, user):
    dav_user = daemon.add_user(unique("dave"))
    for who in (user, dav_user):
        code = CODES.next(who)
        first = PortalClient(daemon, who)
        assert first.try_login(code=code).status_code == 303
        again = PortalClient(daemon, who)
        assert again.try_login(code=code).status_code == 401, "a portal code used twice"
        if who is user:      # then SFTP, password+code as one string
            t = paramiko.Transport((HOST, daemon.sftp_port))
            try:
                t.start_client(timeout=10)
                with pytest.raises(paramiko.AuthenticationException):
                    t.auth_password(who.login, who.password + code)
            finally:
                t.close()
        else:                # then WebDAV, password+code at mount time
            s = requests.Session()
            s.verify = s.trust_env = False
            r = s.request("PROPFIND", f"{daemon.base_url}/", headers={"Depth": "0"},
                          auth=(who.login, who.password + code), timeout=60)
            assert r.status_code == 401, "a code used in the portal must not open a drive"
        daemon.cli("user", "unlock", who.login, check=True)


def test_failed_logins_block_the_account_even_for_the_right_code(daemon, user):
    for _ in range(BLOCK_AFTER):
        r = PortalClient(daemon, user).try_login(password="wrong", code="000000")
        assert r.status_code == 401
    r = PortalClient(daemon, user).try_login()
    assert r.status_code == 401, "a blocked account logged in"
    daemon.cli("user", "unlock", user.login, check=True)
    PortalClient(daemon, user).login()


def test_audit_events_of_the_portal_carry_protocol_web(daemon, client):
    client.upload("/", {"audited.txt": b"a"})
    client.download("/audited.txt")
    client.post("/mkdir", {"name": "audited"}, {"p": "/"})
    PortalClient(daemon, client.user).try_login(password="wrong", code="000000")
    daemon.cli("user", "unlock", client.user.login, check=True)
    events = _audit(daemon, client.user.login)
    web = [e for e in events if e["protocol"] == "web"]
    actions = {e["action"] for e in web}
    assert {"login", "write", "read", "mkdir"} <= actions, actions
    assert any(e["action"] == "login" and e["outcome"] != "ok" for e in web), web
    assert all(e["protocol"] == "web" for e in events if e["action"] in ("write", "mkdir"))


# -- CSRF ------------------------------------------------------------------------------

def _csrf_cases(c):
    c.upload("/", {"keep.txt": b"one"})
    c.upload("/", {"keep.txt": b"two"})
    c.upload("/", {"gone.txt": b"deleted"})
    assert c.post("/delete", params={"p": "/gone.txt"}).status_code == 303
    trash = re.search(r'action="/web/untrash\?p=([^"]+)"', c.get("/trash").text)
    version = re.findall(r'name="version" value="(\d+)"', c.get("/item", {"p": "/keep.txt"}).text)
    assert trash and version
    return [("mkdir", {"p": "/"}, {"name": "forged"}),
            ("delete", {"p": "/keep.txt"}, {}),
            ("rename", {"p": "/keep.txt"}, {"to": "/forged.txt"}),
            ("restore", {"p": "/keep.txt"}, {"version": version[0]}),
            ("untrash", {"p": unquote(trash.group(1).replace("&amp;", "&"))}, {}),
            ("logout", {}, {})]


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_a_post_without_its_token_is_refused_audited_and_changes_nothing(daemon, client, token):
    cases = _csrf_cases(client)
    before = client.listing("/").text, client.get("/trash").text, \
        client.download("/keep.txt").content
    since = len(daemon.log_text())
    for route, params, form in cases:
        if token is not None:
            form = dict(form, csrf=token)
        r = client.post("/" + route, form, params, csrf=False)
        assert r.status_code == 403, (route, r.status_code)
        assert "Traceback" not in r.text
    forged = PortalClient(daemon)
    forged.http.cookies = client.http.cookies
    files = [("file", ("forged.txt", b"forged", "text/plain"))]
    form = [] if token is None else [("csrf", (None, token))]
    r = forged.http.post(client.url("/upload"), params={"p": "/"}, files=form + files,
                         allow_redirects=False, timeout=60)
    assert r.status_code == 403, r.status_code
    r = forged.http.post(client.url("/upload"), params={"p": "/"}, allow_redirects=False,
                         files=files + [("csrf", (None, client.csrf))], timeout=60)
    assert r.status_code == 403, "the token must come before the file"
    after = client.listing("/").text, client.get("/trash").text, \
        client.download("/keep.txt").content
    assert before == after
    time.sleep(0.3)
    lines = [line for line in daemon.log_text()[since:].splitlines() if "strongroom.web" in line]
    assert len(lines) == len(cases) + 2, lines        # one line per refusal
    assert client.get("/files").status_code == 200, "a forged logout ended the session"
    refused = _audit(daemon, client.user.login, "csrf-refused")
    assert len(refused) >= len(cases) + 2, refused
    assert all(e["protocol"] == "web" for e in refused)


def test_a_token_in_the_header_is_accepted(daemon, client):
    r = client.post("/mkdir", {"name": "by-header"}, {"p": "/"}, csrf=False,
                    headers={"X-CSRF-Token": client.csrf})
    assert r.status_code == 303
    other = PortalClient(daemon, daemon.add_user(unique("tom")))
    other.login()
    r = client.post("/mkdir", {"name": "other-token"}, {"p": "/"}, csrf=False,
                    headers={"X-CSRF-Token": other.csrf})
    assert r.status_code == 403, "one session's token must not work for another"


# -- file names that are HTML -------------------------------------------------------

def test_a_file_name_that_is_html_shows_as_text(daemon, client):
    dav = with_app_password(daemon, client.user)
    src = daemon.path("xss")
    src.write_bytes(b"<script>alert(1)</script>")
    folder = "<b onmouseover=alert(3)>bold"
    assert client.post("/mkdir", {"name": folder}, {"p": "/"}).status_code == 303
    r = daemon.request(dav, "PUT", "/" + folder + "/" + XSS, "-T", src)
    assert r.status in (201, 204), r.status
    assert client.upload("/", {XSS: b"<script>alert(2)</script>"}).status_code == 303
    pages = [client.listing("/"), client.listing("/" + folder),
             client.get("/item", {"p": "/" + XSS}),
             client.get("/item", {"p": f"/{folder}/{XSS}"})]
    assert client.post("/delete", params={"p": "/" + XSS}).status_code == 303
    pages.append(client.get("/trash"))
    for page in pages:
        assert page.status_code == 200
        assert "<img src=x" not in page.text and "<b onmouseover" not in page.text, page.url
        assert "&lt;img src=x onerror=alert(1)&gt;.html" in page.text, page.url
    assert "&lt;b onmouseover=alert(3)&gt;bold" in pages[0].text
    r = client.download(f"/{folder}/{XSS}")
    assert r.headers["Content-Disposition"].endswith(quote(XSS, safe=""))


def test_no_traceback_in_the_log(daemon):
    assert "Traceback" not in daemon.log_text()
