"""The account page in a real browser: a token shown once, copied, used and revoked (by keyboard);
an organization created; the session's own token revoked; the page at phone width."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from replicate.client import Client
from replicate.exceptions import ReplicateError

from cogplane.cli.devstack import DevStack

pytestmark = pytest.mark.e2e
Shoot = Callable[[Page, str], Coroutine[Any, Any, Path]]


async def test_a_token_is_shown_once_copied_used_and_revoked(
    signed_in: Page, shoot: Shoot, stack: DevStack
) -> None:
    page = signed_in
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await page.goto("/account")
    await expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    name = f"laptop-{uuid.uuid4().hex[:6]}"
    await page.get_by_label("Token name").fill(name)
    await page.get_by_role("button", name="Create token").click()
    panel = page.locator("#new-token-panel")
    await expect(panel.get_by_role("heading")).to_have_text(f"New token “{name}”")
    await expect(panel).to_contain_text("you won't see it again")
    await expect(panel).to_be_focused()
    secret = (await page.locator("#new-token-secret").text_content() or "").strip()
    assert secret.startswith("r8_")
    await panel.get_by_role("button", name="Copy").click()
    await expect(panel.get_by_role("button", name="Copied")).to_be_visible()
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied == secret
    await shoot(page, "account-new-token")

    client = Client(api_token=copied, base_url=stack.gateway_url)
    assert (await client.accounts.async_current()).username == "dev"

    # Shown once: the page no longer has it.
    await page.goto("/account")
    assert secret not in await page.content()
    row = page.get_by_role("row").filter(has_text=name)
    await expect(row).to_contain_text("r8_")
    await shoot(page, "account")

    # Revoke with the keyboard alone: Enter opens the confirmation, Escape backs out of it.
    revoke = page.get_by_role("button", name=f"Revoke token {name}")
    await revoke.focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text(f"Revoke the token “{name}”")
    await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(revoke).to_be_focused()
    assert (await client.accounts.async_current()).username == "dev"
    await page.keyboard.press("Enter")
    await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(dialog.get_by_role("button", name="Revoke token")).to_be_focused()
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r".*/account\?done=token-revoked"))
    await expect(page.get_by_role("status")).to_contain_text("Token revoked")
    await expect(page.get_by_role("row").filter(has_text=name)).to_have_count(0)
    with pytest.raises(ReplicateError) as refused:
        await client.accounts.async_current()
    assert refused.value.status == 401


async def test_create_an_organization(signed_in: Page, shoot: Shoot) -> None:
    page = signed_in
    await page.goto("/account")
    await page.get_by_text("Create an organization").click()
    username = page.get_by_label("Username")
    await username.fill("Not Valid")
    await expect(page.locator("#org-username-hint")).to_contain_text("Lowercase letters")
    await expect(username).to_have_attribute("aria-invalid", "true")
    org = f"lab-{uuid.uuid4().hex[:8]}"
    await username.fill(org)
    await expect(page.locator("#org-username-hint")).to_contain_text("has the right shape")
    await page.get_by_label("Display name").fill("The Lab")
    await page.get_by_role("button", name="Create organization").click()
    await page.wait_for_url(re.compile(rf".*/account/organizations/{org}\?done=org-created"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text("The Lab")
    await expect(page.get_by_role("status")).to_contain_text("Organization created")
    members = page.get_by_role("row").filter(has_text="dev")
    await expect(members).to_contain_text("owner")
    await expect(page.get_by_role("heading", name="Add a member")).to_be_visible()
    await shoot(page, "account-organization")
    await page.goto("/account")
    await expect(page.get_by_role("link", name=org)).to_be_visible()
    await expect(page.locator("#default-owner option", has_text=org)).to_have_count(1)


async def test_revoking_the_sessions_own_token_signs_out(signed_in: Page) -> None:
    page = signed_in
    await page.goto("/account")
    own = page.get_by_role("row").filter(has_text="this session")
    await own.get_by_role("button", name=re.compile("Revoke")).click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("you will be signed out")
    await dialog.get_by_role("button", name="Revoke token").click()
    await expect(page.get_by_role("heading", name="Token revoked, signed out")).to_be_visible()
    await page.goto("/account")
    await page.wait_for_url(re.compile(r".*/login\?next=/account"))
    assert (await page.request.get("/v1/account")).status == 401


async def test_the_account_page_fits_a_phone(signed_in: Page, shoot: Shoot) -> None:
    page = signed_in
    await page.set_viewport_size({"width": 375, "height": 800})
    await page.goto("/account")
    await expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await shoot(page, "account-phone")
