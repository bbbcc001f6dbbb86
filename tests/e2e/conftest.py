"""Real-browser journeys: Playwright driving Debian's chromium against the whole system
started by the test (web, worker, beat, anvil on PostgreSQL and Redis). Every page must
load without a console error or a failed request; screenshots of the main pages go to
tests/e2e/artifacts/ (not committed)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.stack import LiveStack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="session")
def live(shared_stack: LiveStack) -> LiveStack:
    return shared_stack


# Per module, not per session: while Playwright's sync API is started its asyncio loop
# runs on the main thread, and Django then refuses the ORM to every later test.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        raise RuntimeError(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Watch:
    """What went wrong in the page: console errors and failed requests."""

    problems: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on(
            "console",
            lambda message: self.problems.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            else None,
        )
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        # net::ERR_ABORTED is the browser cancelling its own request (a navigation, a
        # reload, a download taking over): not a failure of the server. Anything else is.
        page.on(
            "requestfailed",
            lambda request: None
            if request.failure == "net::ERR_ABORTED"
            else self.problems.append(f"request failed: {request.url} {request.failure}"),
        )
        page.on(
            "response",
            lambda response: self.problems.append(f"HTTP {response.status}: {response.url}")
            if response.status >= 400
            else None,
        )


@pytest.fixture
def watched(browser: Browser, request: pytest.FixtureRequest) -> Iterator[tuple[Page, Watch]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    watch = Watch()
    watch.attach(page)
    yield page, watch
    if not watch.problems:
        context.close()
        return
    shot(page, f"{request.node.name}-failure")
    context.close()
    raise AssertionError("the page reported problems:\n" + "\n".join(watch.problems))


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# Browser tests against Django's live test server (pytest-django `live_server`), lighter
# than the whole stack when no worker is needed.
@pytest.fixture(scope="module")
def orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API keeps an asyncio loop on this thread, so Django refuses the
    ORM here unless told that the loop runs no Django code (Django's async-safety docs).
    Only while the module's browser lives: set for longer, it would reach subprocesses (and
    `check --deploy` refuses it, rightly)."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def chromium(orm_beside_playwright: None, browser: Browser) -> Browser:
    return browser


def login_cookie(user: object, base_url: str) -> dict[str, str]:
    """The session cookie of `user`, for a browser context on `base_url`."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    value = client.cookies[settings.SESSION_COOKIE_NAME].value
    return {"name": settings.SESSION_COOKIE_NAME, "value": value, "url": base_url}
