"""The portal's account page, Connect page and invitation links against the real
daemon, with python requests as the browser and as the WebDAV client: an invitation
made with `strongroom user add --invite --json` works once (then a clear 410 page)
and leaves a password and TOTP that log in over WebDAV too; a password change needs
the current password and a code and ends the other sessions; a `--no-totp` user
enrols TOTP; an app password made in the portal works for WebDAV until revoked; the
Connect page shows the fingerprints the servers really present.
"""
import base64
import hashlib
import json
import re
import ssl
import time
from html import unescape
from urllib.parse import parse_qs, urlsplit

import paramiko
import pyotp
import pytest
import requests

from tests.support.clients import host_fingerprint
from tests.support.daemon import HOST, User
from tests.support.portal import CODES, PortalClient, token_of, unique

pytestmark = [pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
              pytest.mark.slow]     # started first (tests/conftest.py)
NEW = "Fresh-long-passphrase-2049"
_SECRET = re.compile(r'<code class="secret"[^>]*>([^<]+)</code>')


def propfind(daemon, login: str, secret: str) -> int:
    """The status of a WebDAV PROPFIND of the user's root with Basic credentials."""
    with requests.Session() as s:
        s.verify, s.trust_env = False, False
        r = s.request("PROPFIND", daemon.base_url + "/", auth=(login, secret),
                      headers={"Depth": "0"}, timeout=60)
        return r.status_code


def secret_on(page: requests.Response) -> str:
    m = _SECRET.search(page.text)
    assert m, f"no secret on the page: {page.text[:400]}"
    return unescape(m.group(1))


def logged_out(client: PortalClient) -> bool:
    r = client.get("/files")
    return r.status_code == 303 and r.headers["Location"].startswith("/web/login")


# -- invitations -----------------------------------------------------------------------

def invite(daemon, login: str) -> str:
    out = daemon.cli("user", "add", login, "--client", "acme", "--email", f"{login}@example.org",
                     "--invite", "--json", check=True)
    made = json.loads(out.stdout)
    assert "totp_secret" not in made and "password" not in made, made
    assert made["invite_url"].startswith(f"{daemon.base_url}/web/invite?t="), made
    return made["invite_url"]


def test_an_invitation_sets_password_and_totp_once_then_logs_in(daemon):
    login = unique("ivy")
    link = invite(daemon, login)
    assert propfind(daemon, login, "") == 401
    browser = PortalClient(daemon)
    page = browser.http.get(link, timeout=60)
    assert page.status_code == 200 and "<svg" in page.text and 'autocomplete="new-password"' \
        in page.text and 'autocomplete="one-time-code"' in page.text
    user = User(login, NEW, "acme", secret_on(page))
    token = parse_qs(urlsplit(link).query)["t"][0]
    form = {"t": token, "csrf": token_of(page.text), "password": NEW, "repeat": NEW}
    r = browser.post("/invite", dict(form, code="000000" if pyotp.TOTP(
        user.totp_secret).now() != "000000" else "111111"), csrf=False)
    assert r.status_code == 400 and "code is not right" in r.text     # the link still works
    code = CODES.next(user)
    r = browser.post("/invite", dict(form, code=code), csrf=False)
    assert r.status_code == 303 and r.headers["Location"] == "/web/files", r.text[:400]
    CODES.used(user, code)
    assert browser.session_id and browser.get("/files").status_code == 200
    # used: a clear page, on the link and on a replayed form, and no way in with it
    again = PortalClient(daemon)
    for replay in (again.http.get(link, timeout=60),
                   again.post("/invite", dict(form, code=CODES.next(user)), csrf=False)):
        assert replay.status_code == 410 and "already used or has expired" in replay.text
        assert "Traceback" not in replay.text and again.session_id is None
    assert PortalClient(daemon).http.get(link.replace("t=", "t=x"), timeout=60).status_code == 400
    assert propfind(daemon, login, NEW + CODES.next(user)) == 207
    events = json.loads(daemon.cli("audit", "list", "--json", check=True).stdout)
    assert any(e["action"] == "invite-accepted" and e["actor"] == login for e in events)
    assert any(e["action"] == "invite-refused" and e["actor"] == login for e in events)


def test_an_invitation_post_without_its_page_token_is_refused(daemon):
    link = invite(daemon, unique("ivo"))
    browser = PortalClient(daemon)
    page = browser.http.get(link, timeout=60)
    token = parse_qs(urlsplit(link).query)["t"][0]
    r = browser.post("/invite", {"t": token, "csrf": "forged", "password": NEW, "repeat": NEW,
                                 "code": pyotp.TOTP(secret_on(page)).now()}, csrf=False)
    assert r.status_code == 403 and browser.session_id is None
    assert browser.http.get(link, timeout=60).status_code == 200      # still unused


# -- the account page ------------------------------------------------------------------

def test_password_change_needs_password_and_code_and_ends_other_sessions(daemon):
    user = daemon.add_user(unique("pat"))
    mounted = user.password + CODES.next(user)
    assert propfind(daemon, user.login, mounted) == 207             # a drive session
    here, elsewhere = PortalClient(daemon, user), PortalClient(daemon, user)
    here.login()
    elsewhere.login()
    form = {"new": NEW, "repeat": NEW}
    r = here.post("/account/password", dict(form, current="Not-the-password-1",
                                            code=CODES.next(user)))
    assert r.status_code == 403 and "Nothing was changed" in r.text
    r = here.post("/account/password", dict(form, current=user.password, code=""))
    assert r.status_code == 403
    r = here.post("/account/password", dict(form, current=user.password, code=CODES.next(user)))
    assert r.status_code == 303 and r.headers["Location"] == "/web/account?done=password"
    assert "Your password was changed" in here.get(r.headers["Location"]).text
    assert logged_out(elsewhere) and not logged_out(here)
    assert propfind(daemon, user.login, mounted) == 401              # the drive session ended
    assert propfind(daemon, user.login, NEW + CODES.next(user)) == 207
    assert PortalClient(daemon, user).try_login(password=user.password).status_code == 401


def test_a_user_without_totp_enrols_it_on_the_account_page(daemon):
    user = daemon.add_user(unique("nora"), totp=False)
    assert propfind(daemon, user.login, user.password) == 207
    browser = PortalClient(daemon, user)
    browser.login()
    page = browser.get("/account")
    assert page.status_code == 200 and "<svg" in page.text
    secret = secret_on(page)
    assert secret_on(browser.get("/account")) == secret              # the same until confirmed
    enrolled = User(user.login, user.password, user.client, secret)
    code = CODES.next(enrolled)
    r = browser.post("/account/totp", {"current": user.password, "code": code})
    assert r.status_code == 303 and r.headers["Location"] == "/web/account?done=totp"
    page = browser.get(r.headers["Location"])
    assert "Two-factor login is on" in page.text and secret not in page.text
    # the password alone no longer does, once the drive's remembered login is read again
    # (appliance.service.login RECHECK_SECONDS)
    deadline = time.monotonic() + 15
    while propfind(daemon, user.login, user.password) != 401:
        assert time.monotonic() < deadline, "the password alone still works after enrolment"
        time.sleep(1)
    assert propfind(daemon, user.login, user.password + code) == 401  # a code counts once
    assert propfind(daemon, user.login, user.password + CODES.next(enrolled)) == 207


def test_an_app_password_made_in_the_portal_works_for_webdav_until_revoked(daemon):
    user = daemon.add_user(unique("apu"))
    browser = PortalClient(daemon, user)
    browser.login()
    r = browser.post("/account/app-passwords", {"label": "Office <laptop>"})
    assert r.status_code == 200 and "Office &lt;laptop&gt;" in r.text
    secret = unescape(re.search(r'id="new-app-password">([^<]+)<', r.text).group(1))
    assert secret not in browser.get("/account").text               # shown once
    assert propfind(daemon, user.login, secret) == 207
    r = browser.post("/account/app-passwords/revoke", {"label": "Office <laptop>"})
    assert r.status_code == 303
    assert propfind(daemon, user.login, secret) == 401
    r = browser.post("/account/app-passwords/revoke", {"label": "Office <laptop>"}, csrf=False)
    assert r.status_code == 403                                     # the CSRF token is needed


def test_other_browser_sessions_can_be_ended_from_the_account_page(daemon):
    user = daemon.add_user(unique("sam"), totp=False)
    here, elsewhere = PortalClient(daemon, user), PortalClient(daemon, user)
    here.login()
    elsewhere.login()
    ids = re.findall(r'name="id" value="(\d+)"', here.get("/account").text)
    assert len(ids) == 1                                            # not this one's
    assert here.post("/account/sessions/end", {"id": ids[0]}).status_code == 303
    assert logged_out(elsewhere) and not logged_out(here)


# -- the Connect page ------------------------------------------------------------------

def test_the_connect_page_shows_the_fingerprints_the_servers_present(daemon):
    user = daemon.add_user(unique("cory"))
    browser = PortalClient(daemon, user)
    browser.login()
    page = browser.get("/connect")
    assert page.status_code == 200
    assert f"https://{HOST}:{daemon.webdav_port}/" in page.text
    assert f'<code id="sftp-port">{daemon.sftp_port}</code>' in page.text
    der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((HOST, daemon.webdav_port)))
    assert hashlib.sha256(der).digest().hex(":").upper() in page.text
    for kind in ("ssh-ed25519", "rsa-sha2-512"):        # the keys the SSH server offers
        with paramiko.Transport((HOST, daemon.sftp_port)) as t:
            t.get_security_options().key_types = [kind]
            t.start_client(timeout=30)
            blob = t.get_remote_server_key().asbytes()
        fp = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        assert fp in page.text, kind
    assert host_fingerprint(daemon) in page.text            # as OpenSSH's ssh-keygen prints it
    assert "password followed directly by the current code" in page.text
