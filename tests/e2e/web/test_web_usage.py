"""Usage in a real browser: after predictions ran on a deployment, its lines show up by day,
model, deployment and hardware, with charts; the account switcher shows an organization's."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect
from typer.testing import CliRunner

from cogplane.cli.devstack import DevStack
from cogplane.cli.main import app

pytestmark = pytest.mark.e2e
Shoot = Callable[[Page, str], Coroutine[Any, Any, Path]]
EXAMPLES = Path(__file__).parents[3] / "examples"


def deploy_and_run(stack: DevStack) -> tuple[str, str]:
    """A private model of the development user, a deployment of it, two predictions run on it."""
    assert stack.token is not None
    env = {"COGPLANE_URL": stack.gateway_url, "COGPLANE_TOKEN": stack.token}
    model = f"dev/web-usage-{uuid.uuid4().hex[:6]}"
    runner = CliRunner()
    created = runner.invoke(app, ["models", "create", model, "--visibility", "private"], env=env)
    assert created.exit_code == 0, created.output
    pushed = runner.invoke(app, ["push", model, "--path", str(EXAMPLES / "hello")], env=env)
    assert pushed.exit_code == 0, pushed.output
    version = pushed.output.strip().splitlines()[-1]
    name = f"usage-{uuid.uuid4().hex[:6]}"
    headers = {"Authorization": f"Bearer {stack.token}"}
    with httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=120) as http:
        body = {"name": name, "model": model, "version": version, "hardware": "cpu"}
        made = http.post("/v1/deployments", json=body | {"min_instances": 0, "max_instances": 1})
        assert made.status_code == 200, made.text
        for who in ("ada", "grace"):
            ran = http.post(
                f"/v1/deployments/dev/{name}/predictions",
                json={"input": {"name": who}},
                headers={"Prefer": "wait=60"},
            )
            assert ran.json()["status"] == "succeeded", ran.text
    return model, f"dev/{name}"


async def test_usage_shows_the_deployment_after_predictions(
    signed_in: Page, shoot: Shoot, stack: DevStack
) -> None:
    page = signed_in
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    model, deployment = deploy_and_run(stack)
    by_model = page.locator('[data-breakdown="model"] tbody tr', has_text=model)
    deadline = time.monotonic() + 60
    while True:  # billing meters the instance's events as they arrive
        await page.goto("/usage")
        if await by_model.count() or time.monotonic() > deadline:
            break
        await page.wait_for_timeout(1000)
    await expect(by_model).to_have_count(1)
    await expect(by_model.locator("td").nth(2)).not_to_have_text("0")
    by_deployment = page.locator('[data-breakdown="deployment"] tbody tr', has_text=deployment)
    await expect(by_deployment).to_have_count(1)
    await expect(
        page.locator('[data-breakdown="hardware"] tbody tr', has_text="cpu")
    ).to_be_visible()
    seconds_chart = page.locator('[data-measure="seconds"] svg')
    assert int(await seconds_chart.get_attribute("data-points") or 0) >= 1
    await expect(
        page.locator('[data-usage-chart="model"] svg text', has_text=model)
    ).to_be_visible()
    await expect(page.locator('[data-measure="seconds"] .chart-summary')).to_contain_text(
        "the most on"
    )
    await expect(page.locator('[data-total="seconds"]')).not_to_have_text("0.0 s")
    await shoot(page, "usage")
    # The account switcher: the organization's usage (none of this deployment's).
    await page.get_by_label("Account").select_option("dev-org")
    await page.wait_for_url(re.compile(r".*/usage\?account=dev-org.*"))
    await expect(page.get_by_text("Charged to dev-org")).to_be_visible()
    await expect(page.locator('[data-breakdown="model"] tbody tr', has_text=model)).to_have_count(0)
    await page.get_by_label("Period").select_option("7")
    await page.wait_for_url(re.compile(r".*days=7.*"))
    await expect(page.get_by_label("Account")).to_have_value("dev-org")
    assert errors == []
