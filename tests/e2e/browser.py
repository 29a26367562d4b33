"""Headless Chromium for browser tests: Debian's chromium driven through its chromedriver by selenium.

Use the `browser` fixture (a factory) in a test module::

    from tests.e2e.browser import browser, screenshot  # noqa: F401  (pytest finds the fixture by name)

    @pytest.mark.browser
    def test_something(browser, request):
        driver = browser(language="en")
        driver.get(url)
        screenshot(driver, request, "loaded")

Every driver the factory makes is quit when the test ends; the test is skipped with a clear reason when chromium or
chromedriver is missing. Selenium-manager is never asked to download anything: the driver path is given explicitly.
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import tempfile

import pytest

CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BINARY", "/usr/bin/chromedriver")
OUTPUT_ROOT = pathlib.Path(__file__).resolve().parents[2] / "test-output"
BASE_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
)
# Chromium's content setting "block all site data" makes localStorage/sessionStorage throw SecurityError on access,
# which is what a reader with strict privacy settings sees inside a third-party iframe.
BLOCK_STORAGE_PREFS = {"profile.default_content_setting_values.cookies": 2, "profile.block_third_party_cookies": True}


def chromium_available() -> str | None:
    """None when a browser test can run, else the reason it cannot."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} is not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed in the virtualenv"
    return None


def start_chromium(*, language: str = "zh-CN", width: int = 1100, height: int = 900, block_storage: bool = False,
                   extra_flags: tuple[str, ...] = (), user_data_dir: str | None = None,
                   device_width: int | None = None, javascript: bool = True):
    """A new headless Chromium WebDriver; the caller quits it (and removes `user_data_dir` if it made one).

    `device_width` emulates a phone screen that narrow (a desktop window cannot be made smaller than ~500 px)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*BASE_FLAGS, *extra_flags):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--lang={language}")
    options.add_argument(f"--user-data-dir={user_data_dir or tempfile.mkdtemp(prefix='tb-chromium-')}")
    prefs = {"intl.accept_languages": language}
    if block_storage:
        prefs.update(BLOCK_STORAGE_PREFS)
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    if device_width:
        options.add_experimental_option("mobileEmulation", {
            "deviceMetrics": {"width": device_width, "height": 640, "pixelRatio": 2.0, "touch": True}})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    return driver


def output_dir(request) -> pathlib.Path:
    """test-output/<test name>/, created on demand (the folder is gitignored)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    folder = OUTPUT_ROOT / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(driver, request, label: str) -> pathlib.Path:
    """Save a PNG of the current viewport under the test's output folder and return its path."""
    path = output_dir(request) / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', label)}.png"
    driver.save_screenshot(str(path))
    return path


@pytest.fixture
def browser(request):
    """A factory: `browser(language="en", block_storage=True, width=320)` returns a started WebDriver."""
    reason = chromium_available()
    if reason:
        pytest.skip(reason)
    started = []

    def make(**kwargs):
        profile = tempfile.mkdtemp(prefix="tb-chromium-")
        driver = start_chromium(user_data_dir=profile, **kwargs)
        started.append((driver, profile))
        return driver

    yield make
    for driver, profile in started:
        try:
            driver.quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)
