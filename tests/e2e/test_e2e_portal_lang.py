"""The portal's languages against the real daemon, with python `requests` as the
browser (tests/support/portal.py): the browser's Accept-Language, the switcher's
cookie, the account's language (set with the CLI, and remembered when a logged-in
user switches), Hebrew right to left, and sizes written the language's way.
"""
import json

import pytest

from tests.support.portal import PortalClient, unique

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture
def browser(daemon):
    c = PortalClient(daemon)
    yield c
    c.close()


def _login_page(client: PortalClient, accept: str | None = None):
    headers = {"Accept-Language": accept} if accept is not None else {}
    r = client.get("/login", headers=headers)
    assert r.status_code == 200, r.status_code
    return r.text


@pytest.mark.parametrize("accept, lang, direction, words", [
    ("he-IL,he;q=0.9,en;q=0.8", "he", "rtl", ("התחברות", "סיסמה", "שם משתמש או כתובת דוא״ל")),
    ("sv-SE,sv;q=0.9,en-US;q=0.7", "sv", "ltr", ("Logga in", "Lösenord")),
    ("de-DE,de;q=0.9", "en", "ltr", ("Log in", "Password")),
    ("en;q=0.2,he;q=0.5", "he", "rtl", ("התחברות",)),
])
def test_the_browsers_language_is_the_pages(browser, accept, lang, direction, words):
    page = _login_page(browser, accept)
    assert f'<html lang="{lang}" dir="{direction}">' in page
    for word in words:
        assert word in page


def test_the_switcher_sets_a_cookie_and_the_next_page_follows_it(browser):
    assert 'dir="rtl"' in _login_page(browser, "he")
    r = browser.get("/lang", {"to": "sv", "next": "/web/login"}, headers={"Accept-Language": "he"})
    assert r.status_code == 303 and r.headers["Location"] == "/web/login"
    set_cookie = r.headers["Set-Cookie"]
    assert set_cookie.startswith("sr_lang=sv;") and "Secure" in set_cookie, set_cookie
    assert "SameSite=Strict" in set_cookie and "Max-Age=" in set_cookie, set_cookie
    page = _login_page(browser, "he")          # the browser still prefers Hebrew
    assert '<html lang="sv" dir="ltr">' in page and "Logga in" in page
    # the switcher of every page offers the others, each in its own name
    assert ">English</a>" in page and ">עברית</a>" in page


def test_the_switcher_refuses_unknown_languages_and_foreign_targets(browser):
    r = browser.get("/lang", {"to": "xx", "next": "/web/login"})
    assert r.status_code == 303 and "Set-Cookie" not in r.headers
    for target in ("https://example.org/", "//example.org/web/", "/web//example.org"):
        r = browser.get("/lang", {"to": "he", "next": target})
        assert r.status_code == 303 and r.headers["Location"] == "/web/", target
    assert 'dir="rtl"' in _login_page(browser, "en")


def _language_of(daemon, login: str) -> str | None:
    users = json.loads(daemon.cli("user", "list", "--json", check=True).stdout)
    return next(u for u in users if u["login"] == login)["language"]


def _logged_in(daemon, user) -> PortalClient:
    c = PortalClient(daemon, user)
    c.http.headers["Accept-Language"] = "en-US,en;q=0.9"
    c.login()
    return c


def test_the_accounts_language_and_a_switch_remembered_on_it(daemon):
    user = daemon.add_user(unique("lea"))
    daemon.cli("user", "set", user.login, "--language", "he", check=True)
    first = _logged_in(daemon, user)
    try:
        page = first.get("/files").text
        assert '<html lang="he" dir="rtl">' in page and "סל מחזור" in page
        r = first.get("/lang", {"to": "sv", "next": "/web/files"})
        assert r.status_code == 303
        assert "Papperskorg" in first.get("/files").text
    finally:
        first.close()
    assert _language_of(daemon, user.login) == "sv"
    events = json.loads(daemon.cli("audit", "list", "--user", user.login, "--action", "user-set",
                                   "--all", "--json", check=True).stdout)
    assert [e["detail"] for e in events] == ["language=sv"]
    # another browser, which never chose, gets the account's language
    second = _logged_in(daemon, user)
    try:
        page = second.get("/files").text
        assert '<html lang="sv" dir="ltr">' in page and "Papperskorg" in page
    finally:
        second.close()


def test_sizes_and_names_on_a_hebrew_and_a_swedish_page(daemon):
    user = daemon.add_user(unique("noa"))
    c = _logged_in(daemon, user)
    try:
        name = "חוזה final (2).pdf"
        assert c.upload("/", [(name, b"x" * 1_534_000)]).status_code in (200, 303)
        c.get("/lang", {"to": "sv", "next": "/web/files"})
        assert "1,5\u00a0MB" in c.get("/files").text
        c.get("/lang", {"to": "he", "next": "/web/files"})
        page = c.get("/files").text
        assert 'dir="rtl"' in page and "1.5\u00a0MB" in page
        assert f"<bdi>{name}</bdi>" in page
    finally:
        c.close()
