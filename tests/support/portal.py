"""A browser-like client of the web portal (/web/) for end-to-end tests, with python
`requests` against the real daemon.

`PortalClient` logs in as a real browser does (the login form's double-submit
token, password, then the six-digit code), keeps the session cookie and the form
token (CSRF) of the logged-in pages, and has get/post/upload helpers that send
the token unless told not to. `Codes` hands out TOTP codes a user has not used
yet (a code is accepted once: each login needs a later time step than the last).
Nothing talks to an address other than the daemon's 127.0.0.1.
"""
import re
import threading
import time
import uuid
from html import unescape

import pyotp
import requests
import urllib3

from tests.support.daemon import User

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

STEP = 30
TIMEOUT = 60
SESSION_COOKIE = "__Host-sr_session"
_TOKEN = re.compile(r'name="csrf" value="([^"]*)"')


class Codes:
    """Unused TOTP codes per user: always a later step than the last one handed out,
    within the ±1 step the server accepts (waiting for the next step when needed)."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def next(self, user: User) -> str:
        assert user.totp_secret, f"{user.login} has no TOTP secret"
        with self._lock:
            for _ in range(4):      # bounded: at most a few steps of waiting
                now = time.time()
                current, left = int(now // STEP), STEP - now % STEP
                # the previous step only while enough of this one is left to send it
                first = current - 1 if left > 8 else current
                step = max(first, self._last.get(user.login, -1) + 1)
                if step <= current + 1 and not (step == current + 1 and left < 3):
                    self._last[user.login] = step
                    return pyotp.TOTP(user.totp_secret).at(step * STEP)
                time.sleep(left + 0.5)
            raise AssertionError(f"no unused code for {user.login}")

    def used(self, user: User, code: str) -> None:
        """Record that `code` (of this step or a neighbour) was spent elsewhere."""
        now = int(time.time() // STEP)
        for step in (now - 1, now, now + 1):
            if pyotp.TOTP(user.totp_secret).at(step * STEP) == code:
                with self._lock:
                    self._last[user.login] = max(self._last.get(user.login, -1), step)


CODES = Codes()


def token_of(html: str) -> str | None:
    """The csrf hidden field of a page, if it has a form."""
    m = _TOKEN.search(html)
    return unescape(m.group(1)) if m else None


class PortalClient:
    """One browser: its cookie jar, its portal session, its form token."""

    def __init__(self, daemon, user: User | None = None) -> None:
        self.daemon, self.user = daemon, user
        self.base = daemon.base_url
        self.http = requests.Session()
        self.http.verify = False
        self.http.trust_env = False
        self.csrf: str | None = None

    # -- logging in ------------------------------------------------------------------

    def start_login(self, name: str, password: str) -> requests.Response:
        """The login form, then its first step; the response of the first step."""
        form = self.get("/login")
        pre = token_of(form.text) or ""
        return self.post("/login", {"login": name, "password": password, "csrf": pre},
                         csrf=False)

    def send_code(self, code: str, *, page: requests.Response | None = None) -> requests.Response:
        pre = token_of(page.text) if page is not None else None
        pre = pre or self.http.cookies.get("__Host-sr_pre", "")
        return self.post("/login/code", {"code": code, "csrf": pre}, csrf=False)

    def login(self, name: str | None = None, password: str | None = None,
              code: str | None = None) -> requests.Response:
        """Log in (password, then code); assert it worked; fetch the form token."""
        r = self.try_login(name, password, code)
        assert r.status_code == 303 and self.session_id, \
            f"login failed: {r.status_code} {r.text[:400]}"
        self.refresh_token()
        return r

    def try_login(self, name: str | None = None, password: str | None = None,
                  code: str | None = None) -> requests.Response:
        """Both steps of a login; the last response (303 on success)."""
        user = self.user
        name = name if name is not None else user.login
        first = self.start_login(name, password if password is not None else user.password)
        if first.status_code != 200 or "one-time-code" not in first.text:
            return first
        if code is None:
            code = CODES.next(user) if user and user.totp_secret else "000000"
        return self.send_code(code, page=first)

    def refresh_token(self) -> str:
        page = self.get("/files")
        assert page.status_code == 200, page.status_code
        self.csrf = token_of(page.text)
        assert self.csrf, "a logged-in page without its form token"
        return self.csrf

    @property
    def session_id(self) -> str | None:
        return self.http.cookies.get(SESSION_COOKIE)

    def logout(self) -> requests.Response:
        return self.post("/logout")

    # -- requests --------------------------------------------------------------------

    def url(self, route: str) -> str:
        return self.base + ("/web" + route if not route.startswith("/web") else route)

    def get(self, route: str, params: dict | None = None, **kw) -> requests.Response:
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", TIMEOUT)
        return self.http.get(self.url(route), params=params, **kw)

    def post(self, route: str, data: dict | None = None, params: dict | None = None, *,
             csrf: bool = True, **kw) -> requests.Response:
        """A form post; with `csrf` the session's token goes in the form."""
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", TIMEOUT)
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf", self.csrf or "")
        return self.http.post(self.url(route), data=data, params=params, **kw)

    def upload(self, folder: str, files, *, csrf: bool = True,
               **kw) -> requests.Response:
        """Upload [(name, bytes)] (or {name: bytes}) into `folder` as the page's form does:
        the token field first, then the file parts."""
        items = list(files.items()) if isinstance(files, dict) else list(files)
        fields = ([("csrf", (None, self.csrf or ""))] if csrf else []) + \
            [("file", (name, data, "application/octet-stream")) for name, data in items]
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", TIMEOUT)
        return self.http.post(self.url("/upload"), params={"p": folder}, files=fields, **kw)

    def download(self, path: str, **kw) -> requests.Response:
        return self.get("/download", {"p": path}, **kw)

    def listing(self, path: str = "/") -> requests.Response:
        return self.get("/files", {"p": path})

    def close(self) -> None:
        self.http.close()


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def with_app_password(daemon, user: User, label: str = "tests") -> User:
    """`user` with an app password for WebDAV (no code needed), made with the CLI."""
    import dataclasses
    import json
    out = daemon.cli("user", "app-password", "create", user.login, "--label", label, "--json",
                     check=True)
    return dataclasses.replace(user, password=json.loads(out.stdout)["password"])
