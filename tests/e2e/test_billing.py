"""Billing end to end: real predictions on real Cog instances, metered by the billing service.

Public model: only the predictions' processing, charged to whoever ran them. Private model: its
instances' setup, idle and processing, charged to the model's owner. A deployment owned by an
organization: its instances' time lands on the organization, whoever of its members runs it.
Billing stopped mid-run catches up; replaying the whole stream into it changes no total.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import replicate
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from cogplane.cli.devstack import DevStack
from cogplane.cli.main import app
from cogplane.common.bus import Bus
from cogplane.common.contracts import billing as b
from cogplane.common.contracts.base import Empty, Rpc
from cogplane.common.db import utcnow

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).parents[2] / "examples"
CPU = Decimal("0.000100")
T = TypeVar("T")


def call(stack: DevStack, rpc: Rpc[Any, T], body: Any) -> T:
    async def go() -> T:
        bus = Bus(stack.nats.url, "billing-e2e", timedelta(seconds=10))
        await bus.connect()
        try:
            return await bus.request(rpc, body)
        finally:
            await bus.close()

    return asyncio.run(go())


def usage(stack: DevStack, account: str, *groups: str) -> b.UsageReport:
    now = utcnow()
    query = b.UsageQuery(
        account=account,
        since=now - timedelta(days=1),
        until=now + timedelta(days=1),
        group_by=list(groups),  # type: ignore[arg-type]
    )
    return call(stack, b.USAGE, query)


def until(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def push(stack: DevStack, example: str, visibility: str) -> tuple[str, str]:
    assert stack.token is not None
    env = {"COGPLANE_URL": stack.gateway_url, "COGPLANE_TOKEN": stack.token}
    model = f"dev/bill-{example}-{uuid.uuid4().hex[:6]}"
    runner = CliRunner()
    created = runner.invoke(app, ["models", "create", model, "--visibility", visibility], env=env)
    assert created.exit_code == 0, created.output
    pushed = runner.invoke(app, ["push", model, "--path", str(EXAMPLES / example)], env=env)
    assert pushed.exit_code == 0, pushed.output
    return model, pushed.output.strip().splitlines()[-1]


def restart_billing(stack: DevStack) -> None:
    stack.start_service("billing")

    def ready() -> bool:
        try:
            return httpx.get(f"{stack.url('billing')}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    until(ready, 60, "billing ready")


def client(stack: DevStack) -> replicate.Client:
    return replicate.Client(api_token=stack.token, base_url=stack.gateway_url)


def costs(stack: DevStack, ids: list[str]) -> dict[str, str]:
    found = call(stack, b.PREDICTION_COSTS, b.PredictionCostQuery(prediction_ids=ids))
    return found.costs


def model_lines(report: b.UsageReport, model: str) -> dict[str | None, Decimal]:
    return {x.kind: Decimal(x.seconds) for x in report.lines if x.model == model}


def test_a_public_model_costs_its_predictions_processing_only(stack: DevStack) -> None:
    model, version = push(stack, "hello", "public")
    predictions = [
        client(stack).predictions.create(version=version, input={"name": f"n{i}"}) for i in range(3)
    ]
    for prediction in predictions:
        prediction.wait()
        assert prediction.status == "succeeded"
    ids = [p.id for p in predictions]
    found = until(lambda: c if len(c := costs(stack, ids)) == 3 else None, 30, "3 costs")
    expected_ms = sum(round(p.metrics["predict_time"] * 1000) for p in predictions)
    lines = until(
        lambda: (
            (got := model_lines(usage(stack, "dev", "model", "kind"), model))
            and sum(got.values()) == Decimal(expected_ms) / 1000
            and got
        ),
        30,
        "the predictions in dev's usage",
    )
    assert set(lines) == {"processing"}  # no setup or idle time of the shared pool
    assert sum(Decimal(c) for c in found.values()) == CPU * expected_ms / 1000


def test_a_private_model_costs_its_instances_time(stack: DevStack) -> None:
    model, version = push(stack, "hello", "private")
    prediction = client(stack).predictions.create(version=version, input={"name": "p"})
    prediction.wait()
    assert prediction.status == "succeeded"
    lines = until(
        lambda: (
            (got := model_lines(usage(stack, "dev", "model", "kind"), model))
            and {"setup", "processing"} <= got.keys()
            and got
        ),
        30,
        "setup and processing charged",
    )
    assert lines["setup"] > 0
    # The prediction's processing is part of its instance's time: it is not charged twice.
    instances = call(stack, b.INSTANCE_USAGE, b.InstanceUsageQuery()).results
    ours = [u for u in instances if u.account == "dev" and u.charged and u.processing_ms]
    assert any(Decimal(u.processing_ms) / 1000 == lines["processing"] for u in ours)


def test_a_deployment_of_an_organization_is_charged_to_it(stack: DevStack) -> None:
    model, version = push(stack, "hello", "private")
    headers = {"Authorization": f"Bearer {stack.token}"}
    name = f"bill-{uuid.uuid4().hex[:6]}"
    body = {
        "name": name,
        "owner": "dev-org",
        "model": model,
        "version": version,
        "hardware": "cpu",
        "min_instances": 0,
        "max_instances": 1,
    }
    created = httpx.post(f"{stack.gateway_url}/v1/deployments", json=body, headers=headers)
    assert created.status_code == 200, created.text
    # dev, a member of dev-org, runs it.
    prediction = client(stack).deployments.predictions.create(
        f"dev-org/{name}", input={"name": "org"}
    )
    prediction.wait()
    assert prediction.status == "succeeded"
    org = until(
        lambda: [
            x for x in usage(stack, "dev-org", "deployment", "kind").lines if x.kind == "setup"
        ],
        30,
        "the deployment's setup on the organization",
    )
    assert org[0].deployment == f"dev-org/{name}"
    mine = usage(stack, "dev", "deployment").lines
    assert f"dev-org/{name}" not in [x.deployment for x in mine]


def test_billing_down_mid_run_catches_up_and_a_replay_changes_nothing(stack: DevStack) -> None:
    _model, version = push(stack, "hello", "public")
    stack.stop_service("billing")
    try:
        prediction = client(stack).predictions.create(version=version, input={"name": "late"})
        prediction.wait()
        assert prediction.status == "succeeded"
    finally:
        restart_billing(stack)
    until(lambda: costs(stack, [prediction.id]), 60, "the prediction metered after the restart")

    # Replay the whole stream into billing, its record of seen events erased first: the ledger
    # must recognise every entry by its own keys.
    def ended() -> dict[str, b.InstanceUsage]:
        found = call(stack, b.INSTANCE_USAGE, b.InstanceUsageQuery()).results
        return {u.instance_id: u for u in found if u.ended}

    before = ended()
    assert before, "some instances have ended by now"
    late_cost = costs(stack, [prediction.id])
    events_before = call(stack, b.INGEST_STATUS, Empty()).events_recorded
    stack.stop_service("billing")

    async def reset() -> None:
        bus = Bus(stack.nats.url, "billing-e2e", timedelta(seconds=10))
        await bus.connect()
        try:
            await bus.js.delete_consumer("COGPLANE_EVENTS", "billing-intake")
        finally:
            await bus.close()
        engine = create_async_engine(stack.postgres.url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("TRUNCATE billing.recorded_events"))
        finally:
            await engine.dispose()

    asyncio.run(reset())
    restart_billing(stack)
    until(
        lambda: call(stack, b.INGEST_STATUS, Empty()).events_recorded >= events_before,
        120,
        "the stream read again",
    )
    after = ended()
    for instance_id, usage_before in before.items():
        assert after[instance_id] == usage_before  # not a millisecond or a cent more
    assert costs(stack, [prediction.id]) == late_cost
