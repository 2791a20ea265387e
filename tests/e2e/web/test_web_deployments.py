"""Deployments in a real browser: the create form's live estimate, then a deployment's page while
predictions run on it (instances, charts and decisions moving), a new release and deletion."""

from __future__ import annotations

import asyncio
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
FINISHED = {"succeeded", "failed", "canceled", "aborted"}


@pytest.fixture(scope="module")
def slow_model(stack: DevStack) -> str:
    """A private model of the development user that sleeps as long as it is asked to."""
    assert stack.token is not None
    env = {"COGPLANE_URL": stack.gateway_url, "COGPLANE_TOKEN": stack.token}
    model = f"dev/web-slow-{uuid.uuid4().hex[:6]}"
    runner = CliRunner()
    created = runner.invoke(app, ["models", "create", model, "--visibility", "private"], env=env)
    assert created.exit_code == 0, created.output
    pushed = runner.invoke(app, ["push", model, "--path", str(EXAMPLES / "slow")], env=env)
    assert pushed.exit_code == 0, pushed.output
    return model


def api(stack: DevStack) -> httpx.Client:
    return httpx.Client(
        base_url=stack.gateway_url,
        headers={"Authorization": f"Bearer {stack.token}"},
        timeout=30,
    )


def run_predictions(stack: DevStack, deployment: str, count: int, seconds: float) -> list[str]:
    """Start ``count`` predictions on the deployment at once and wait for them all to finish."""
    with api(stack) as http:
        ids = []
        for _ in range(count):
            made = http.post(
                f"/v1/deployments/{deployment}/predictions", json={"input": {"seconds": seconds}}
            )
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
        deadline = time.monotonic() + 180
        statuses: dict[str, str] = {}
        while time.monotonic() < deadline and len(statuses) < count:
            for pid in ids:
                status = http.get(f"/v1/predictions/{pid}").json()["status"]
                if status in FINISHED:
                    statuses[pid] = status
            time.sleep(0.5)
        assert set(statuses.values()) == {"succeeded"}, statuses
        return ids


def console_errors(page: Page) -> list[str]:
    """Errors the page's scripts hit or the CSP reports (refused requests are expected here)."""
    found: list[str] = []

    def seen(message: Any) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            found.append(message.text)

    page.on("console", seen)
    page.on("pageerror", lambda error: found.append(str(error)))
    return found


def estimate(page: Page, name: str) -> Any:
    return page.locator(f'[data-estimate="{name}"]')


async def test_create_a_deployment_watching_the_estimate(
    signed_in: Page, shoot: Shoot, slow_model: str
) -> None:
    page = signed_in
    errors = console_errors(page)
    await page.goto(f"/deployments/new?model={slow_model}")
    await expect(page.get_by_label("Model")).to_have_value(slow_model)
    panel = page.locator("[data-estimate-panel]")
    await expect(estimate(page, "price_per_second")).to_have_text("$0.000100")
    await expect(estimate(page, "per_hour_at_min")).to_have_text("$0.00")
    await expect(estimate(page, "per_hour_at_max")).to_have_text("$0.36")
    before = await panel.bounding_box()
    await page.get_by_label("Max instances").fill("2")
    await expect(estimate(page, "per_hour_at_max")).to_have_text("$0.72")
    await expect(estimate(page, "per_month_at_max")).to_have_text("$525.60")
    await page.get_by_label("Min instances").fill("1")
    await expect(estimate(page, "per_hour_at_min")).to_have_text("$0.36")
    await expect(estimate(page, "per_month_at_min")).to_have_text("$262.80")
    await page.get_by_label("Hardware").select_option("gpu-t4")
    await expect(estimate(page, "price_per_second")).to_have_text("$0.000225")
    await expect(estimate(page, "per_hour_at_min")).to_have_text("$0.81")
    await expect(estimate(page, "per_hour_at_max")).to_have_text("$1.62")
    assert await panel.bounding_box() == before  # the numbers change, the layout does not
    name = f"web-{uuid.uuid4().hex[:6]}"
    await page.get_by_label("Name").fill(name)
    await shoot(page, "deployment-new")
    # min above max: the estimate says why, and so does the server when the form is sent.
    await page.get_by_label("Min instances").fill("3")
    await expect(estimate(page, "status")).to_contain_text("max_instances")
    await expect(estimate(page, "per_hour_at_min")).to_have_text("—")
    await page.get_by_role("button", name="Create deployment").click()
    await expect(page.locator("#min_instances-error")).to_contain_text("must not exceed")
    await expect(page.get_by_label("Min instances")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Name")).to_have_value(name)
    # Fixed from the keyboard: min, then max, then the hardware back to CPU.
    await page.get_by_label("Min instances").focus()
    await page.keyboard.press("Control+A")
    await page.keyboard.type("0")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "max_instances"
    await page.get_by_label("Hardware").select_option("cpu")
    await expect(estimate(page, "per_hour_at_max")).to_have_text("$0.72")
    await expect(estimate(page, "per_hour_at_min")).to_have_text("$0.00")
    await page.get_by_role("button", name="Create deployment").click()
    await page.wait_for_url(re.compile(rf".*/deployments/dev/{name}$"))
    await expect(page.get_by_role("heading", name=f"dev/{name}")).to_be_visible()
    await expect(page.get_by_text("min 0, max 2")).to_be_visible()
    await page.goto("/deployments")
    await expect(page.get_by_role("link", name=f"dev/{name}")).to_be_visible()
    await shoot(page, "deployments-list")
    # At a phone's width the form still fits: nothing scrolls sideways.
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto("/deployments/new")
    await expect(estimate(page, "per_hour_at_max")).to_have_text("$0.36")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert errors == []


async def points(page: Page, chart: str) -> int:
    return int(await page.locator(f'[data-chart="{chart}"] svg').get_attribute("data-points") or 0)


async def test_instances_and_charts_move_under_load(
    signed_in: Page, shoot: Shoot, slow_model: str, stack: DevStack
) -> None:
    page = signed_in
    errors = console_errors(page)
    name = f"load-{uuid.uuid4().hex[:6]}"
    with api(stack) as http:
        version = http.get(f"/v1/models/{slow_model}").json()["latest_version"]["id"]
        body = {"name": name, "model": slow_model, "version": version, "hardware": "cpu"}
        made = http.post("/v1/deployments", json=body | {"min_instances": 0, "max_instances": 2})
        assert made.status_code == 200, made.text
    await page.goto(f"/deployments/dev/{name}")
    await expect(page.locator("[data-instances-empty]")).to_contain_text("No instances are online")
    await expect(page.locator('[data-state-count="processing"]')).to_have_text("0")
    await expect(page.locator('[data-chart="predictions"] .chart-summary')).to_contain_text(
        "in the last"
    )
    charts_at = (await page.locator("[data-metrics]").bounding_box() or {}).get("y")
    before = await points(page, "predictions")

    load = asyncio.create_task(asyncio.to_thread(run_predictions, stack, f"dev/{name}", 4, 10))
    processing = page.locator('[data-instances-body] tr[data-state="processing"]')
    await expect(processing.first).to_be_visible(timeout=120_000)
    await expect(page.locator('[data-state-count="processing"]')).not_to_have_text("0")
    await expect(page.locator('[data-chart="predictions"] .chart-summary')).to_contain_text(
        re.compile(r"\b[1-9]\d* predictions? in the last"), timeout=30_000
    )
    await page.wait_for_function(
        f"""() => Number(document.querySelector('[data-chart="predictions"] svg')
            .dataset.points) > {before}""",
        timeout=30_000,
    )
    await page.wait_for_function(
        """() => Number(document.querySelector('[data-chart="instances"] svg')
            .dataset.points) > 0""",
        timeout=30_000,
    )
    assert (await page.locator("[data-metrics]").bounding_box() or {}).get("y") == charts_at
    await expect(page.locator("[data-decisions-body] tr").first).to_contain_text("→")
    await shoot(page, "deployment")
    # At a phone's width the page reflows: nothing scrolls sideways, the charts redraw to fit.
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.wait_for_timeout(500)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await shoot(page, "deployment-phone")
    await page.set_viewport_size({"width": 1280, "height": 900})
    assert len(await load) == 4
    idle = page.locator('[data-instances-body] tr[data-state="idle"]')
    await expect(idle.first).to_be_visible(timeout=60_000)
    # The run box calls the endpoint (as the signed-in user, a web prediction).
    await page.get_by_label("Input (JSON)").fill('{"seconds": 1}')
    await page.get_by_role("button", name="Run", exact=True).click()
    await expect(page.locator("[data-run-status]")).to_contain_text("succeeded", timeout=60_000)
    await expect(page.locator("[data-run-output]")).to_contain_text("slept 1")
    await expect(page.locator('[data-chart="predict_time"] .chart-summary')).to_contain_text("p99")
    # The data table is the charts' text alternative.
    await page.locator('[data-chart="predictions"] summary').click()
    await expect(page.locator('[data-chart="predictions"] table tbody tr').first).to_be_visible()

    # An instance is online: deleting is refused with the API's reason.
    await page.get_by_text("Delete this deployment…").click()
    await page.get_by_role("button", name=f"Delete dev/{name}").click()
    await expect(page.get_by_role("alert")).to_contain_text("is in use")

    # A new release from the edit form.
    await page.get_by_label("Max instances").fill("3")
    await expect(estimate(page, "per_hour_at_max")).to_have_text("$1.08")
    await page.get_by_role("button", name="Save release #2").click()
    await page.wait_for_url(re.compile(r".*\?released=2$"))
    await expect(page.get_by_text("Release #2 created")).to_be_visible()
    await expect(page.get_by_text("min 0, max 3")).to_be_visible()

    # Once its instances are gone (the new release's too, after the idle timeout) it can be
    # deleted; until then each try shows why not.
    deadline = time.monotonic() + 120
    while "deleted=" not in page.url:
        assert time.monotonic() < deadline, "the deployment could not be deleted"
        await expect(page.locator("[data-instances-empty]")).to_contain_text(
            "No instances are online", timeout=90_000
        )
        if await page.locator(".danger-zone details").get_attribute("open") is None:
            await page.get_by_text("Delete this deployment…").click()
        await page.get_by_role("button", name=f"Delete dev/{name}").click()
        await page.wait_for_load_state()
    await expect(page.get_by_role("status")).to_contain_text(f"Deleted dev/{name}")
    assert errors == []
