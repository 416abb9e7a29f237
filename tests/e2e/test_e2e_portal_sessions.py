"""The portal's sessions in time and which application answers a request, against the
real daemon: `[web] session_idle` and `session_lifetime` (seconds here), a session
that ends in the middle of a flow (401 JSON for a script, a login redirect for a
page), `/` for browsers and for WebDAV clients, a user's own folder named `web`,
and `[web] enabled = false`.
"""
import time

import pytest
import requests

from tests.support.daemon import running_daemon
from tests.support.portal import PortalClient, unique, with_app_password

pytestmark = [pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
              pytest.mark.slow]     # started first (tests/conftest.py)
IDLE, LIFETIME = 3, 6


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-portal-time", {
        "web": {"session_idle": f"{IDLE}s", "session_lifetime": f"{LIFETIME}s"}})


@pytest.fixture(scope="module")
def disabled(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-portal-off", {"web": {"enabled": False}})


@pytest.fixture
def client(daemon):
    c = PortalClient(daemon, daemon.add_user(unique("tina")))
    c.login()
    yield c
    c.close()


def _http():
    s = requests.Session()
    s.verify, s.trust_env = False, False
    return s


def _ended(r):
    return r.status_code == 303 and r.headers["Location"].startswith("/web/login")


# -- idle and lifetime ----------------------------------------------------------------

def test_a_session_unused_for_session_idle_ends(daemon, client):
    assert client.get("/files").status_code == 200
    time.sleep(IDLE + 1)
    assert _ended(client.get("/files"))
    assert client.post("/mkdir", {"name": "late"}, {"p": "/"}).status_code == 401


def test_a_session_in_use_lives_until_session_lifetime(daemon, client):
    born = time.monotonic()
    while time.monotonic() - born < LIFETIME - 1.5:      # in use: never idle that long
        assert client.get("/files").status_code == 200, \
            f"ended after {time.monotonic() - born:.1f} s of use"
        time.sleep(1)
    time.sleep(max(0.0, LIFETIME + 1 - (time.monotonic() - born)))
    assert _ended(client.get("/files"))


def test_a_session_that_ends_mid_flow_answers_json_to_scripts(daemon, client):
    time.sleep(IDLE + 1)
    r = client.upload("/", {"late.txt": b"too late"}, headers={"Accept": "application/json"})
    assert r.status_code == 401
    assert r.headers["Content-Type"].startswith("application/json")
    assert "error" in r.json()
    r = client.post("/mkdir", {"name": "late"}, {"p": "/"},
                    headers={"Accept": "application/json"})
    assert r.status_code == 401 and "error" in r.json()
    r = client.get("/files", {"p": "/"})
    assert _ended(r) and "next=" in r.headers["Location"]
    again = PortalClient(daemon, client.user)
    again.login()
    assert "late.txt" not in again.listing("/").text


# -- which application answers ----------------------------------------------------------

def test_a_browser_asking_for_the_root_is_sent_to_the_portal(daemon):
    s = _http()
    html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    r = s.get(daemon.base_url + "/", headers={"Accept": html}, allow_redirects=False,
              timeout=60)
    assert r.status_code == 302 and r.headers["Location"] == "/web/"
    user = daemon.users["alice"]         # no TOTP: her password is enough for WebDAV
    r = s.get(daemon.base_url + "/", headers={"Accept": html}, allow_redirects=False,
              auth=(user.login, user.password), timeout=60)
    assert r.status_code == 200 and "Location" not in r.headers
    for accept in ("*/*", "", "application/xml", "text/xml, text/html;q=0.5"):
        r = s.get(daemon.base_url + "/", headers={"Accept": accept}, allow_redirects=False,
                  timeout=60)
        assert r.status_code == 401, (accept, r.status_code)
        assert "Basic" in r.headers.get("WWW-Authenticate", "")
    r = s.request("PROPFIND", daemon.base_url + "/", headers={"Depth": "0"},
                  auth=(user.login, user.password), timeout=60)
    assert r.status_code == 207


def test_a_users_own_folder_named_web_is_still_reachable_over_webdav(daemon):
    user = with_app_password(daemon, daemon.add_user(unique("wendy")))
    assert daemon.request(user, "MKCOL", "/web").status == 201
    src = daemon.path("in-web")
    src.write_bytes(b"a file in my folder called web\n")
    assert daemon.request(user, "PUT", "/web/login", "-T", src).status == 201
    r = daemon.request(user, "GET", "/web/login")
    assert r.status == 200 and r.body == src.read_bytes()
    r = daemon.request(user, "PROPFIND", "/web", "-H", "Depth: 1")
    assert r.status == 207 and b"/web/login" in r.body


def test_when_the_portal_is_off_web_is_404_and_webdav_works(disabled):
    s = _http()
    for path in ("/web/", "/web/login", "/web/static/portal.css", "/web"):
        r = s.get(disabled.base_url + path, allow_redirects=False, timeout=60)
        assert r.status_code == 404, (path, r.status_code)
    r = s.post(disabled.base_url + "/web/login", data={"login": "alice"},
               allow_redirects=False, timeout=60)
    assert r.status_code in (404, 405), r.status_code
    r = s.get(disabled.base_url + "/", headers={"Accept": "text/html"}, allow_redirects=False,
              timeout=60)
    assert r.status_code == 401, "no portal to send a browser to"
    user = disabled.users["alice"]
    r = s.request("PROPFIND", disabled.base_url + "/", headers={"Depth": "0"},
                  auth=(user.login, user.password), timeout=60)
    assert r.status_code == 207
    src = disabled.path("x")
    src.write_bytes(b"still a drive\n")
    assert disabled.request("alice", "PUT", "/still.txt", "-T", src).status == 201
    assert disabled.request("alice", "GET", "/still.txt").body == b"still a drive\n"


def test_no_traceback_in_the_logs(daemon, disabled):
    assert "Traceback" not in daemon.log_text() + disabled.log_text()
