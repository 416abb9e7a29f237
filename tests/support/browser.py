"""A real browser for portal tests: Debian's chromium driven by its chromedriver through
selenium (nothing is downloaded: both paths are given, and Selenium Manager is told
to stay offline). Headless, with a throwaway profile, and with the flags that keep
chromium from reaching for the network (this machine has none but loopback)."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = Path(os.environ.get("STRONGROOM_TEST_SHOTS", tempfile.gettempdir())) / "strongroom-shots"


def need_browser() -> None:
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    reason = "portal browser tests need Debian's chromium and chromium-driver"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so they may not be skipped")
    pytest.skip(reason)


def start_browser(downloads: Path, lang: str = "en-US"):
    """A headless chromium that trusts the test daemon's certificate and saves
    downloads into `downloads`; the caller quits it."""
    need_browser()
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="strongroom-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--ignore-certificate-errors", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-default-apps", "--window-size=1280,900",
                 f"--user-data-dir={profile}", f"--lang={lang}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "intl.accept_languages": lang, "safebrowsing.enabled": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver._strongroom_profile = profile        # removed by quit_browser
    return driver


def quit_browser(driver) -> None:
    profile = getattr(driver, "_strongroom_profile", None)
    try:
        driver.quit()
    finally:
        if profile:
            shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver, name: str) -> Path:
    """Save what the browser shows, for a failed test's report."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
