"""Signing in and out of the web app in a real browser."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from cogplane.cli.devstack import DevStack

pytestmark = pytest.mark.e2e
Shoot = Callable[[Page, str], Coroutine[Any, Any, Path]]


async def test_sign_in_with_a_token_and_out(page: Page, shoot: Shoot, stack: DevStack) -> None:
    await page.goto("/models")
    await page.wait_for_url(re.compile(r".*/login\?next=/models"))
    await shoot(page, "01-sign-in")
    await page.get_by_label("API token").fill("r8_not_a_token")
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_role("alert")).to_have_text("That token is not valid")
    assert stack.token is not None
    await page.get_by_label("API token").fill(stack.token)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(re.compile(r".*/models"))
    account = await page.request.get("/v1/account")
    assert (await account.json())["username"] == "dev"
    cookies = await page.context.cookies()
    session = next(c for c in cookies if c["name"] == "cogplane_session")
    assert session["httpOnly"]
    assert session["sameSite"] == "Lax"
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r".*/login"))
    assert (await page.request.get("/v1/account")).status == 401


async def test_one_click_development_sign_in(signed_in: Page) -> None:
    account = await signed_in.request.get("/v1/account")
    assert (await account.json())["username"] == "dev"
