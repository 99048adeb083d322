"""Browser tests: real headless Chromium (Playwright) against a live server.

Chromium is Debian's ``/usr/bin/chromium`` (``CHROMIUM`` overrides it); the
playwright package brings only its driver. Without it the tests skip on a
laptop and fail under ``CI=true``. Every page fixture records JavaScript
console errors, uncaught page errors, failed requests and HTTP error
responses, and the test fails at teardown if any were seen. Screenshots go to
``SCREENSHOT_DIR`` (default ``var/screenshots``), which CI keeps.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from core.groups import ANALYST, CAMPAIGN_MANAGER
from experiments.demo import demo_seed

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "browser-test-password-1"


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as ``<SCREENSHOT_DIR>/<name>.png`` and return its path."""
    folder = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "var" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests need Chromium under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module, closed at the module's end.

    Playwright's sync API keeps an event loop running in this thread, so
    Django's ORM would refuse to run ("async context") while it lives: allow
    it for these modules only, and stop Playwright before other modules run.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                  headless=True)
            yield chromium
            chromium.close()


@pytest.fixture
def demo(transactional_db, settings, tmp_path):
    """A small seeded demo (the experiment demo_spring with its arms and customers)."""
    settings.MODEL_ARTIFACT_DIR = tmp_path / "models"
    return demo_seed(customers=300, seed=5, anchor=datetime(2026, 10, 1, tzinfo=UTC))


@pytest.fixture
def users(transactional_db):
    """``manager`` (Campaign manager) and ``analyst`` (Analyst), both staff."""
    made = {}
    for username, group in [("manager", CAMPAIGN_MANAGER), ("analyst", ANALYST)]:
        user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        made[username] = user
    return made


class Problems(list):
    """What went wrong in the browser; asserted empty when the page closes."""

    def ignore_status(self, status: int) -> None:
        self[:] = [p for p in self if not p.startswith(f"HTTP {status} ")]


@pytest.fixture
def open_page(browser, live_server, users):
    """``open_page(username)``: a new page logged in through the admin login form."""
    opened = []

    def open_(username: str):
        context = browser.new_context(base_url=live_server.url,
                                      viewport={"width": 1280, "height": 900})
        page = context.new_page()
        problems = Problems()
        page.on("console", lambda m: m.type == "error" and problems.append(
            f"console: {m.text} at {m.location.get('url')}"))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(
            f"request failed: {r.method} {r.url} ({r.failure})"))
        page.on("response", lambda r: r.status >= 400 and problems.append(
            f"HTTP {r.status} {r.request.method} {r.url}"))
        page.problems = problems
        opened.append((context, page))
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")
        return page

    yield open_
    failures = []
    for context, page in opened:
        failures += page.problems
        context.close()
    assert not failures, "the browser saw errors:\n" + "\n".join(failures)


@pytest.fixture
def manager_page(open_page):
    return open_page("manager")


@pytest.fixture
def analyst_page(open_page):
    return open_page("analyst")
