"""The models pages in Chromium: create a model, push a version to it, the generated form's
errors, and code from the API tab run with Replicate's official Python and Node clients."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from typer.testing import CliRunner

from cogplane.cli.devstack import DevStack
from cogplane.cli.main import app

pytestmark = pytest.mark.e2e
Shoot = Callable[[Page, str], Coroutine[Any, Any, Path]]
EXAMPLES = Path(__file__).parents[3] / "examples"
SLOW = 180_000  # ms: a first build, or a first instance, takes a while
NODE_CLIENT = "1.4.0"  # the version tests/e2e/test_node_client.py checks


def cli(stack: DevStack, *args: str) -> str:
    assert stack.token is not None
    env = {"COGPLANE_URL": stack.gateway_url, "COGPLANE_TOKEN": stack.token}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


async def push(stack: DevStack, model: str, example: str) -> str:
    """Push ``examples/<example>`` to ``model`` with the CLI; the version id."""
    path = str(EXAMPLES / example)
    output = await asyncio.to_thread(cli, stack, "push", model, "--path", path)
    return output.strip().splitlines()[-1]


async def new_model(stack: DevStack, example: str) -> str:
    model = f"dev/{example}-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(cli, stack, "models", "create", model, "--visibility", "public")
    await push(stack, model, example)
    return model


async def test_create_a_model_then_push_and_see_the_version_appear(
    signed_in: Page, stack: DevStack, shoot: Shoot
) -> None:
    page = signed_in
    await page.goto("/models")
    await page.get_by_role("link", name="Create a model").click()
    await page.wait_for_url(re.compile(r".*/models/new$"))
    name_box = page.get_by_label("Model name")
    hint = page.locator("#name-hint")
    await name_box.fill("Bad Name")
    await expect(hint).to_have_text("Use lowercase letters only.")
    await expect(name_box).to_have_attribute("aria-invalid", "true")
    name = f"made-{uuid.uuid4().hex[:6]}"
    await name_box.fill(name)
    await expect(hint).to_have_text(f"dev/{name} is available.")
    await page.get_by_label("Private").check()
    await page.get_by_label("Hardware").select_option("gpu-t4")
    await page.get_by_label("Description").fill("Greets people <b>kindly</b>")
    await shoot(page, "model-new")
    await page.get_by_role("button", name="Create model").click()
    await page.wait_for_url(re.compile(rf".*/models/dev/{name}$"))
    await expect(page.get_by_role("heading", name="No version yet")).to_be_visible()
    await expect(page.locator(".description")).to_have_text("Greets people <b>kindly</b>")
    await expect(page.locator(".model-head")).to_contain_text("Nvidia T4 GPU")

    # The same name again: the server's refusal next to the name.
    await page.goto("/models/new")
    await page.get_by_label("Model name").fill(name)
    await expect(page.locator("#name-hint")).to_have_text(f"dev/{name} already exists.")
    await page.get_by_role("button", name="Create model").click()
    await expect(page.locator("#err-name")).to_contain_text("already exists")

    # Push from the CLI while the page is open: the version shows up by itself.
    await page.goto(f"/models/dev/{name}")
    await expect(page.get_by_role("heading", name="No version yet")).to_be_visible()
    version = await push(stack, f"dev/{name}", "hello")
    await expect(page.get_by_role("button", name="Run", exact=True)).to_be_visible(timeout=30_000)
    await expect(page.locator("main")).to_contain_text(f"Version {version[:12]}")
    await page.get_by_role("link", name="Versions").click()
    await expect(page.locator("table")).to_contain_text(version[:12])
    await shoot(page, "model-versions")
    await page.get_by_role("link", name="Settings").click()
    await shoot(page, "model-settings")
    await page.goto("/models")
    await expect(page.get_by_role("link", name=f"dev/{name}")).to_be_visible()
    await shoot(page, "models-list")


async def test_the_form_hints_and_shows_the_servers_422_on_the_right_field(
    signed_in: Page, stack: DevStack, shoot: Shoot
) -> None:
    page = signed_in
    model = await new_model(stack, "form")
    await page.goto(f"/models/{model}")
    # Every kind of input the schema has, in x-order, defaults filled in.
    await expect(page.get_by_label("Style", exact=True)).to_have_value('"plain"')
    await expect(page.get_by_label("Repeat", exact=True)).to_have_value("1")
    await expect(page.get_by_label("Temperature", exact=True)).to_have_value("0.7")
    await expect(page.get_by_label("Api Key", exact=True)).to_have_attribute("type", "password")
    names = await page.locator("#run-form .field").evaluate_all(
        "(fields) => fields.map((f) => f.dataset.name)"
    )
    assert names == ["text", "style", "repeat", "width", "temperature", "api_key", "suffix", "tags"]

    width = page.get_by_label("Width", exact=True)
    await width.fill("100")
    await expect(page.locator("#err-width")).to_have_text("Must be at most 80")  # the hint
    await page.get_by_role("button", name="Run", exact=True).click()
    # The server's 422, each message next to its field; the first invalid field has focus.
    await expect(page.locator("#err-width")).to_have_text("Must be less than or equal to 80")
    await expect(page.locator("#err-text")).to_have_text("text is required")
    await expect(page.get_by_label("Text", exact=True)).to_be_focused()
    await expect(page.get_by_label("Text", exact=True)).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#run-status")).to_have_text("Check the highlighted inputs.")
    await shoot(page, "model-run-422")

    await page.get_by_label("Text", exact=True).fill("hi")
    await width.fill("10")
    await page.get_by_label("Style", exact=True).select_option(label="shout")
    await page.get_by_label("Repeat", exact=True).select_option(label="2")
    await page.get_by_label("Api Key", exact=True).fill("secret")
    await page.get_by_label("Tags", exact=True).fill("x\ny")
    await page.get_by_role("button", name="Run", exact=True).click()
    await expect(page.locator("#run-status .badge")).to_have_text("succeeded", timeout=SLOW)
    await expect(page.locator("#output")).to_have_text("HI HI [x] [y]|t=0.7|with key")
    await expect(page.locator("#err-width")).to_have_text("")


async def test_copy_the_python_snippet_and_run_it_with_the_official_client(
    signed_in: Page, stack: DevStack, shoot: Shoot
) -> None:
    page = signed_in
    model = await new_model(stack, "hello")
    await page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=stack.gateway_url
    )
    await page.goto(f"/models/{model}/api")
    await expect(page.locator("#snippet-python")).to_contain_text(stack.gateway_url)
    await shoot(page, "model-api")
    await page.get_by_role("button", name="Copy the Python code").click()
    await expect(page.get_by_role("button", name="Copy the Python code")).to_have_text("Copied")
    code = await page.evaluate("navigator.clipboard.readText()")
    assert code == await page.locator("#snippet-python").text_content()
    assert stack.token is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLICATE_")}
    env["REPLICATE_API_TOKEN"] = stack.token
    ran = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "Hello, world!"
    # The same for a prediction's own inputs.
    await page.goto(f"/models/{model}")
    await page.get_by_label("Name", exact=True).fill("snippet")
    await page.get_by_role("button", name="Run", exact=True).click()
    await expect(page.locator("#run-status .badge")).to_have_text("succeeded", timeout=SLOW)
    await page.get_by_role("link", name="API code for these inputs").click()
    await expect(page.locator("#snippet-python")).to_contain_text('"name": "snippet"')
    await expect(page.locator("#snippet-curl")).to_contain_text('"input": {"name": "snippet"}')


@pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None, reason="no Node")
async def test_the_nodejs_snippet_runs_with_the_official_client(
    signed_in: Page, stack: DevStack, tmp_path: Path
) -> None:
    page = signed_in
    model = await new_model(stack, "hello")
    (tmp_path / "package.json").write_text(json.dumps({"type": "module", "private": True}))
    install = ["npm", "install", "--silent", "--no-audit", "--no-fund", f"replicate@{NODE_CLIENT}"]
    await asyncio.to_thread(subprocess.run, install, cwd=tmp_path, check=True, timeout=300)
    await page.goto(f"/models/{model}/api")
    code = await page.locator("#snippet-node").text_content()
    assert code is not None
    (tmp_path / "snippet.mjs").write_text(code)
    assert stack.token is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLICATE_")}
    env["REPLICATE_API_TOKEN"] = stack.token
    ran = await asyncio.to_thread(
        subprocess.run,
        ["node", "snippet.mjs"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "Hello, world!"
