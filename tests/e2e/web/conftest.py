"""Browser tests: the web app in Debian's Chromium, driven by Playwright, on the e2e platform.

The tests use Playwright's async API (they run on the session's event loop, like every async
test here). Screenshots of the main pages go to ``artifacts/screenshots/`` (``make test`` prints
where at the end).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from cogplane.cli.devstack import DevStack

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parents[3] / "artifacts" / "screenshots"
Shoot = Callable[[Page, str], Coroutine[Any, Any, Path]]


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: `make browser` (or `make test`) installs it")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(stack: DevStack, chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as driver:
        chromium = await driver.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser, stack: DevStack) -> AsyncIterator[Page]:
    """A fresh browser tab on the platform, not signed in."""
    context = await browser.new_context(
        base_url=stack.gateway_url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(20_000)
    tab = await context.new_page()
    yield tab
    await context.close()


@pytest.fixture
async def signed_in(page: Page) -> Page:
    """A tab signed in as the development user (the one-click sign-in of `make dev`)."""
    await page.goto("/login")
    await page.get_by_role("button", name="Sign in as the development user").click()
    await page.wait_for_url(re.compile(r".*/models.*"))
    return page


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot of ``page`` as an artifact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def shoot() -> Shoot:
    """``await shoot(page, name)`` saves a screenshot artifact."""
    return screenshot
