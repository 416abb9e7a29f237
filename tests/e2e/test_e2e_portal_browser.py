"""The portal in a real browser (Debian's chromium, through selenium): what a client with
only a browser does. Each test logs in a user of its own (a TOTP code is accepted
once), and saves a screenshot when it fails (tests/support/browser.py SHOTS)."""
import contextlib
import time
from pathlib import Path

import pyotp
import pytest
import requests
import urllib3

from tests.support.browser import quit_browser, screenshot, start_browser

urllib3.disable_warnings()
WAIT = 20


def dav(daemon, user) -> requests.Session:
    s = requests.Session()
    s.verify, s.trust_env, s.auth = False, False, (user.login, user.password)
    return s


@pytest.fixture
def browser(tmp_path, request):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = start_browser(downloads)
    driver.downloads = downloads
    yield driver
    quit_browser(driver)


@contextlib.contextmanager
def shots(driver, name: str):
    """On failure, a screenshot of the page, named in the error."""
    try:
        yield
    except BaseException as e:
        path = screenshot(driver, name)
        raise AssertionError(f"{e}\n(screenshot: {path}; page: {driver.current_url})") from e


def wait_for(predicate, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def fresh_code(secret: str) -> str:
    """A code that stays valid while the browser sends it (not in a step's last 5 s)."""
    if 30 - time.time() % 30 < 5:
        time.sleep(30 - time.time() % 30 + 0.5)
    return pyotp.TOTP(secret).now()


def log_in(driver, daemon, user) -> None:
    from selenium.webdriver.common.by import By
    driver.get(f"{daemon.base_url}/web/")
    wait_for(lambda: driver.find_elements(By.ID, "login"), "the login form")
    driver.find_element(By.ID, "login").send_keys(user.login)
    driver.find_element(By.ID, "password").send_keys(user.password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: driver.find_elements(By.ID, "code"), "the code form")
    code = driver.find_element(By.ID, "code")
    assert code.get_attribute("autocomplete") == "one-time-code"
    code.send_keys(fresh_code(user.totp_secret))
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait_for(lambda: "/web/files" in driver.current_url, "the files page after login")


def listed(driver) -> list[str]:
    from selenium.webdriver.common.by import By
    return [a.text for a in driver.find_elements(By.CSS_SELECTOR, "table.files tbody td:first-child a")]


def download(driver, name: str) -> bytes:
    """The one file downloaded so far (chromium may change characters of its name that
    Windows forbids, so the name is only what the test expected)."""
    folder = Path(driver.downloads)
    done = wait_for(lambda: [p for p in folder.iterdir() if not p.name.endswith(".crdownload")]
                    if not list(folder.glob("*.crdownload")) else [],
                    f"the download of {name}")
    assert len(done) == 1, done
    return done[0].read_bytes()


def test_log_in_upload_list_and_download(daemon, browser, tmp_path):
    from selenium.webdriver.common.by import By
    user = daemon.add_user("brenda", "acme")
    with shots(browser, "upload"):
        log_in(browser, daemon, user)
        local = tmp_path / "Årsredovisning 2026.pdf"
        local.write_bytes(bytes(range(256)) * 4096 + b"end")
        browser.find_element(By.ID, "files").send_keys(str(local))
        browser.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()
        wait_for(lambda: local.name in listed(browser), "the uploaded file in the listing")
        assert dav(daemon, daemon.users["alice"]).get(
            f"{daemon.base_url}/{requests.utils.quote(local.name)}").content == \
            local.read_bytes()
        browser.find_element(By.LINK_TEXT, local.name).click()
        assert download(browser, local.name) == local.read_bytes()


def test_an_older_version_is_restored(daemon, browser):
    from selenium.webdriver.common.by import By
    user = daemon.add_user("victor", "acme")
    s = dav(daemon, daemon.users["alice"])
    url = f"{daemon.base_url}/contract.txt"
    for text in (b"first draft", b"second draft"):
        assert s.put(url, data=text).status_code in (201, 204)
    with shots(browser, "restore"):
        log_in(browser, daemon, user)
        browser.get(f"{daemon.base_url}/web/item?p=/contract.txt")
        restore = browser.find_elements(By.CSS_SELECTOR, "table.versions button[type=submit]")
        assert len(restore) == 1        # only the older version has a Restore button
        restore[0].click()
        wait_for(lambda: s.get(url).content == b"first draft", "the restored content")
        rows = browser.find_elements(By.CSS_SELECTOR, "table.versions tbody tr")
        assert len(rows) == 3


def test_hebrew_pages_read_right_to_left(daemon, browser):
    from selenium.webdriver.common.by import By
    user = daemon.add_user("hadas", "acme")
    with shots(browser, "hebrew"):
        log_in(browser, daemon, user)
        browser.find_element(By.CSS_SELECTOR, "nav.langs a[lang=he]").click()
        wait_for(lambda: browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "he",
                 "the Hebrew page")
        html = browser.find_element(By.TAG_NAME, "html")
        assert html.get_attribute("dir") == "rtl"
        body = browser.find_element(By.TAG_NAME, "body")
        assert body.value_of_css_property("direction") == "rtl"
        # the page's own text is Hebrew, not English left in place
        assert "Log out" not in body.text
        assert any("\u0590" <= ch <= "\u05ff" for ch in body.text)


def test_a_script_in_a_file_name_is_shown_as_text(daemon, browser):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    user = daemon.add_user("xavier", "beta")
    name = "<img src=x onerror=alert(1)>.html"
    s = dav(daemon, daemon.users["bob"])
    assert s.put(f"{daemon.base_url}/{requests.utils.quote(name)}",
                 data=b"<script>alert(2)</script>").status_code in (201, 204)
    with shots(browser, "xss"):
        log_in(browser, daemon, user)
        assert name in listed(browser)
        assert not browser.find_elements(By.CSS_SELECTOR, "img[src=x]")
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text
        browser.find_element(By.LINK_TEXT, name).click()    # downloaded, never rendered
        assert download(browser, name) == b"<script>alert(2)</script>"
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text


def test_a_forged_post_is_refused(daemon, browser):
    from selenium.webdriver.common.by import By
    user = daemon.add_user("fiona", "acme")
    with shots(browser, "csrf"):
        log_in(browser, daemon, user)
        # the browser's own session cookie goes along (same origin), the form token does not
        status = browser.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch('/web/mkdir?p=/', {method: 'POST', credentials: 'same-origin',
                  headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                  body: 'name=forged'}).then(r => done(r.status), e => done(String(e)));
        """)
        assert status == 403
        browser.get(f"{daemon.base_url}/web/files")
        assert "forged/" not in listed(browser)
        assert browser.find_elements(By.ID, "upload")       # still logged in
    audit = daemon.cli("audit", "list", "--json", check=True).stdout
    assert "csrf-refused" in audit


def test_an_invited_user_sets_a_password_and_enrols_totp(daemon, browser):
    import json
    from selenium.webdriver.common.by import By
    out = daemon.cli("user", "add", "ines", "--client", "acme", "--email", "ines@example.com",
                     "--invite", "--json", check=True).stdout
    link = json.loads(out)["invite_url"]
    password = "Harbour-lantern-first-77"
    with shots(browser, "invite"):
        browser.get(link)
        wait_for(lambda: browser.find_elements(By.ID, "totp-secret"), "the invitation page")
        assert browser.find_elements(By.CSS_SELECTOR, ".qr svg")       # the QR code, inline
        secret = browser.find_element(By.ID, "totp-secret").text.replace(" ", "")
        browser.find_element(By.ID, "password").send_keys(password)
        browser.find_element(By.ID, "repeat").send_keys(password)
        browser.find_element(By.ID, "code").send_keys(fresh_code(secret))
        browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        wait_for(lambda: "/web/files" in browser.current_url or "/web/account" in browser.current_url,
                 "a logged-in page after the invitation")
        assert browser.find_elements(By.CSS_SELECTOR, "header form button")   # Log out
        browser.get(link)                                   # the link works once
        assert "ines" not in browser.find_element(By.TAG_NAME, "h1").text.lower() or \
            not browser.find_elements(By.ID, "totp-secret")
    # the password and the enrolled secret log in over WebDAV too (password + code)
    time.sleep(30 - time.time() % 30 + 0.5)                 # the next step: a code is taken once
    s = requests.Session()
    s.verify, s.trust_env = False, False
    s.auth = ("ines", password + pyotp.TOTP(secret).now())
    assert s.request("PROPFIND", f"{daemon.base_url}/", headers={"Depth": "0"}).status_code == 207
