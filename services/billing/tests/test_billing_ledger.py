"""The ledger against a running billing service, fed events through real JetStream.

Billing gets a database and a NATS server of its own, so the events here are the only ones.
Instance lifecycles are synthetic but exact (the runner's monotonic clock is given), which lets
the tests check sums to the millisecond: parts add up to lifetimes, duplicates and reordering
change nothing, gaps are reported, lost instances are closed, billing restarts lose nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import cogplane.billing
from cogplane.billing.app import create_app
from cogplane.billing.config import BillingSettings
from cogplane.billing.models import SCHEMA
from cogplane.common import migrations
from cogplane.common.bus import Bus
from cogplane.common.contracts import billing as b
from cogplane.common.contracts.base import Empty
from cogplane.common.contracts.instances import InstanceLost, InstanceStateChanged, Ownership
from cogplane.common.contracts.predictions import PredictionFinished
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from cogplane.common.testing.apps import running
from cogplane.common.testing.wait import eventually

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
CPU = Decimal("0.000100")
T4 = Decimal("0.000225")


async def _create_database(url: str, name: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def database_url(postgres: EmbeddedPostgres) -> str:
    name = f"billing_{uuid.uuid4().hex[:8]}"
    asyncio.run(_create_database(postgres.url, name))
    url = postgres.url.rsplit("/", 1)[0] + f"/{name}"
    migrations.upgrade(Path(cogplane.billing.__file__).parent / "migrations", url, SCHEMA)
    return url


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(Path(tmp_path_factory.mktemp("billing-nats")) / "nats", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def settings(database_url: str, own_nats: EmbeddedNats) -> BillingSettings:
    return BillingSettings(database_url=database_url, nats_url=own_nats.url, port=0)


@pytest.fixture(scope="module")
async def bus(settings: BillingSettings, own_nats: EmbeddedNats) -> AsyncIterator[Bus]:
    client = Bus(own_nats.url, "billing-tests", timedelta(seconds=5))
    await client.connect()
    yield client
    await client.close()


@pytest.fixture(scope="module")
async def billing(settings: BillingSettings, bus: Bus) -> AsyncIterator[None]:
    async with running(create_app(settings)):
        yield


class Life:
    """The states of one synthetic instance, with exact clocks."""

    def __init__(
        self,
        *,
        target: str = "version:v1",
        hardware: str = "cpu",
        account: str | None = "alice",
        visibility: str = "private",
        deployment: str | None = None,
        start: datetime = T0,
    ) -> None:
        self.id = f"i-{uuid.uuid4().hex[:10]}"
        self.target = target
        self.hardware = hardware
        self.ownership = Ownership(
            account=account,
            model="alice/echo",
            visibility=visibility,  # type: ignore[arg-type]
            deployment=deployment,
        )
        self.start = start
        self.events: list[InstanceStateChanged] = []

    def then(self, state: str, after_ms: int, busy: int = 0) -> Life:
        """The next state, ``after_ms`` after the previous one (0 for the first)."""
        elapsed = (
            round((self.events[-1].monotonic - 1000.0) * 1000) + after_ms if self.events else 0
        )
        self.events.append(
            InstanceStateChanged(
                instance_id=self.id,
                node_id="node-x",
                target=self.target,
                version_id="v1",
                hardware=self.hardware,
                state=state,  # type: ignore[arg-type]
                seq=len(self.events),
                at=self.start + timedelta(milliseconds=elapsed),
                monotonic=1000.0 + elapsed / 1000,
                busy=busy,
                ownership=self.ownership,
            )
        )
        return self


def standard(life: Life) -> Life:
    """booting 400 → setting_up 1100 → idle 2000 → processing 3000 → idle 500 → draining 100."""
    return (
        life.then("booting", 0)
        .then("setting_up", 400)
        .then("idle", 1100)
        .then("processing", 2000, busy=1)
        .then("idle", 3000)
        .then("draining", 500)
        .then("stopped", 100)
    )


async def publish(bus: Bus, events: list[Any]) -> None:
    for event in events:
        await bus.publish(event)


async def instance_usage(bus: Bus, instance_id: str) -> b.InstanceUsage | None:
    found = await bus.request(b.INSTANCE_USAGE, b.InstanceUsageQuery(instance_ids=[instance_id]))
    return found.results[0] if found.results else None


async def settled(bus: Bus, life: Life) -> b.InstanceUsage:
    """The instance's usage once every part between its transitions is in."""

    async def probe() -> b.InstanceUsage | None:
        usage = await instance_usage(bus, life.id)
        if usage is None or not usage.ended or usage.missing_seqs:
            return None
        total = usage.setup_ms + usage.idle_ms + usage.processing_ms
        return usage if total == usage.lifetime_ms else None

    return await eventually(probe, timeout=10)


async def usage(bus: Bus, account: str, *groups: str) -> b.UsageReport:
    query = b.UsageQuery(
        account=account,
        since=T0 - timedelta(days=2),
        until=T0 + timedelta(days=5),
        group_by=list(groups) or ["kind"],  # type: ignore[list-item]
    )
    return await bus.request(b.USAGE, query)


async def test_parts_add_up_to_the_lifetime_exactly(bus: Bus, billing: None) -> None:
    life = standard(Life(account=f"acct-{uuid.uuid4().hex[:6]}"))
    await publish(bus, life.events)
    got = await settled(bus, life)
    assert (got.setup_ms, got.idle_ms, got.processing_ms) == (1500, 2600, 3000)
    # draining with nothing running is idle: 100 ms more of it
    assert got.lifetime_ms == 7100
    assert got.setup_ms + got.idle_ms + got.processing_ms == 7100
    assert got.charged
    assert Decimal(got.cost) == CPU * Decimal("7.1")


async def test_out_of_order_and_duplicated_events_change_nothing(bus: Bus, billing: None) -> None:
    account = f"acct-{uuid.uuid4().hex[:6]}"
    life = standard(Life(account=account))
    shuffled = [*life.events[3:], *life.events[:3]]
    await publish(bus, shuffled)
    first = await settled(bus, life)
    report = await usage(bus, account)
    # Every event again, as new messages (a replay of the stream): billing dedupes by event id.
    for event in life.events:
        await bus.js.publish(event.subject, event.model_dump_json().encode())
    await asyncio.sleep(1.0)
    status_before = await bus.request(b.INGEST_STATUS, Empty())
    again = await instance_usage(bus, life.id)
    assert again == first
    assert await usage(bus, account) == report
    assert status_before.events_recorded >= len(life.events)


async def test_a_missing_transition_is_reported_as_a_gap(bus: Bus, billing: None) -> None:
    life = standard(Life(account=f"acct-{uuid.uuid4().hex[:6]}"))
    await publish(bus, [e for e in life.events if e.seq != 3])

    async def gap() -> b.InstanceUsage | None:
        usage = await instance_usage(bus, life.id)
        return usage if usage is not None and usage.ended else None

    got = await eventually(gap, timeout=10)
    assert got.missing_seqs == [3]
    # The parts around the gap are not guessed: idle (2→3) and processing (3→4) are missing.
    assert (got.setup_ms, got.processing_ms) == (1500, 0)
    gaps = await bus.request(b.INSTANCE_USAGE, b.InstanceUsageQuery(only_gaps=True))
    assert life.id in [u.instance_id for u in gaps.results]
    # The late transition arrives after all: everything is metered, nothing twice.
    await publish(bus, [life.events[3]])
    healed = await settled(bus, life)
    assert (healed.setup_ms, healed.idle_ms, healed.processing_ms) == (1500, 2600, 3000)


async def test_a_lost_instance_is_charged_until_it_was_declared_lost(
    bus: Bus, billing: None
) -> None:
    life = Life(account=f"acct-{uuid.uuid4().hex[:6]}")
    life.then("booting", 0).then("setting_up", 300).then("idle", 700)
    await publish(bus, life.events)
    lost_at = life.events[-1].at + timedelta(milliseconds=4000)
    lost = InstanceLost(
        instance_id=life.id, node_id="node-x", target=life.target, at=lost_at, reason="silent"
    )
    await publish(bus, [lost, lost.model_copy()])

    async def closed() -> b.InstanceUsage | None:
        usage = await instance_usage(bus, life.id)
        return usage if usage is not None and usage.ended and usage.idle_ms else None

    got = await eventually(closed, timeout=10)
    assert (got.setup_ms, got.idle_ms, got.processing_ms) == (1000, 4000, 0)
    assert got.lifetime_ms == 5000
    # A report from the runner after it was declared lost adds nothing.
    late = life.then("stopped", 9000).events[-1]
    await publish(bus, [late])
    await asyncio.sleep(0.5)
    assert await instance_usage(bus, life.id) == got


async def test_public_private_and_deployment_rules(bus: Bus, billing: None) -> None:
    owner, caller, org = (f"{n}-{uuid.uuid4().hex[:6]}" for n in ("owner", "caller", "org"))
    public = standard(Life(account=owner, visibility="public", hardware="gpu-t4"))
    private = standard(Life(account=owner, visibility="private"))
    deployed = standard(
        Life(account=org, target="deployment:d1", deployment=f"{org}/app", visibility="public")
    )
    for life in (public, private, deployed):
        await publish(bus, life.events)
        await settled(bus, life)

    def ended(prediction_id: str, life: Life, owner: str, **fields: Any) -> PredictionFinished:
        return PredictionFinished(
            prediction_id=prediction_id,
            owner=owner,
            owner_account_id="x",
            model="alice/echo",
            version="v1",
            target=life.target,
            instance_id=life.id,
            created_at=T0,
            **fields,
        )

    pid = uuid.uuid4().hex
    await publish(
        bus,
        [
            # Public: only the caller's processing, at the instance's price.
            ended(f"{pid}-a", public, caller, status="succeeded", started_at=T0, predict_time=2.5),
            # Canceled while running: the time it ran.
            ended(
                f"{pid}-b",
                public,
                caller,
                status="canceled",
                started_at=T0,
                completed_at=T0 + timedelta(milliseconds=750),
            ),
            # Aborted before it started: nothing.
            ended(f"{pid}-c", public, caller, status="canceled"),
            # On a private model or a deployment: part of the instance's time, not charged again.
            ended(f"{pid}-d", private, caller, status="succeeded", predict_time=1.0),
            ended(f"{pid}-e", deployed, caller, status="succeeded", predict_time=1.0),
        ],
    )

    ids = [f"{pid}-{x}" for x in "abcde"]

    async def all_in() -> b.PredictionCosts | None:
        found = await bus.request(b.PREDICTION_COSTS, b.PredictionCostQuery(prediction_ids=ids))
        return found if len(found.costs) == 4 else None

    costs = await eventually(all_in, timeout=10)
    report = await usage(bus, caller, "kind")
    assert [(x.kind, x.seconds) for x in report.lines] == [("processing", "3.25")]
    assert Decimal(report.total_cost_exact) == T4 * Decimal("3.25")
    # The public instance's own time is free for its owner; the private one is all charged.
    by_kind = {x.kind: x for x in (await usage(bus, owner, "kind")).lines}
    assert {k: v.seconds for k, v in by_kind.items()} == {
        "setup": "1.5",
        "idle": "2.6",
        "processing": "3",
    }
    assert Decimal((await usage(bus, owner)).total_cost_exact) == CPU * Decimal("7.1")
    # A deployment's instances are charged to the deployment's owner (an organization here).
    org_report = await usage(bus, org, "deployment", "hardware")
    assert [(x.deployment, x.hardware, x.seconds) for x in org_report.lines] == [
        (f"{org}/app", "cpu", "7.1")
    ]
    assert costs.costs == {
        f"{pid}-a": "0.0005625",  # 2.5 s at $0.000225
        f"{pid}-b": "0.00016875",  # 0.75 s
        f"{pid}-d": "0.0001",  # 1 s at $0.0001 (its instance's time is what is charged)
        f"{pid}-e": "0.0001",
    }


async def test_usage_groups_by_day_and_rounds_lines(bus: Bus, billing: None) -> None:
    account = f"acct-{uuid.uuid4().hex[:6]}"
    # Idle across midnight: the day grouping splits it exactly there.
    life = Life(account=account, start=datetime(2026, 5, 1, 23, 59, 58, tzinfo=UTC))
    life.then("booting", 0).then("idle", 1000).then("stopped", 4000)
    await publish(bus, life.events)
    await settled(bus, life)
    report = await usage(bus, account, "day", "kind")
    assert [(x.day, x.kind, x.seconds) for x in report.lines] == [
        ("2026-05-01", "idle", "1"),
        ("2026-05-01", "setup", "1"),
        ("2026-05-02", "idle", "3"),
    ]
    assert all(x.cost == "0.00" for x in report.lines)  # fractions of a cent, rounded per line
    assert report.total_seconds == "5"
    assert Decimal(report.total_cost_exact) == CPU * 5


async def test_billing_stopped_then_restarted_loses_nothing(
    bus: Bus, settings: BillingSettings
) -> None:
    account = f"acct-{uuid.uuid4().hex[:6]}"
    life = standard(Life(account=account))
    async with running(create_app(settings)):
        await publish(bus, life.events[:3])
        await eventually(lambda: instance_usage(bus, life.id), timeout=10)
    await publish(bus, life.events[3:])  # billing is down meanwhile
    async with running(create_app(settings)):
        got = await settled(bus, life)
    assert got.lifetime_ms == 7100


async def test_garbage_queries_are_clear_errors(bus: Bus, billing: None) -> None:
    from cogplane.common.errors import CogplaneError

    for call in (
        bus.request(b.USAGE, b.UsageQuery(account="a", since=T0, until=T0 - timedelta(seconds=1))),
        bus.request(
            b.ESTIMATE, b.EstimateQuery(hardware="gpu-nope", min_instances=0, max_instances=1)
        ),
        bus.request(b.ESTIMATE, b.EstimateQuery(hardware="cpu", min_instances=2, max_instances=1)),
    ):
        with pytest.raises(CogplaneError) as caught:
            await call
        assert caught.value.status == 422


async def test_usage_includes_the_time_of_instances_still_online(bus: Bus, billing: None) -> None:
    account = f"acct-{uuid.uuid4().hex[:6]}"
    life = Life(account=account).then("booting", 0).then("idle", 1000)
    await publish(bus, life.events)
    await eventually(lambda: instance_usage(bus, life.id), timeout=10)

    async def both() -> b.UsageReport | None:
        report = await usage(bus, account, "kind")
        return report if len(report.lines) == 2 else None

    report = await eventually(both, timeout=10)
    # Idle from its last report to the end of the window asked (it is still online).
    window_end = T0 + timedelta(days=5)
    idle_ms = round((window_end - life.events[-1].at).total_seconds() * 1000)
    assert [(x.kind, x.seconds) for x in report.lines] == [
        ("idle", str(Decimal(idle_ms) / 1000)),
        ("setup", "1"),
    ]
    by_day = await usage(bus, account, "day")
    assert len(by_day.lines) == 6  # T0's day and the five after it, split at midnight
    assert by_day.total_seconds == report.total_seconds
