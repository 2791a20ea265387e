"""The scheduler's NATS handlers."""

from __future__ import annotations

from cogplane.common.contracts.base import Empty
from cogplane.common.contracts.events import parse_event
from cogplane.common.contracts.runners import (
    LIST_RUNNERS,
    RunnerHeartbeat,
    RunnerNodeList,
    RunnerStopped,
)
from cogplane.common.db import utcnow
from cogplane.common.service import Runtime
from cogplane.scheduler.config import SchedulerSettings
from cogplane.scheduler.repository import RunnerRepository
from cogplane.scheduler.service import to_node

RUNNER_EVENTS = "cogplane.events.runners.>"
RUNNER_CONSUMER = "scheduler-runners"


async def register(rt: Runtime) -> None:
    """Keep the runner inventory from runner events; answer inventory queries."""
    db = rt.require_db()
    settings = rt.settings
    assert isinstance(settings, SchedulerSettings)

    async def on_runner_event(data: bytes, _: dict[str, str]) -> None:
        event = parse_event(data)
        async with db.unit_of_work() as session:
            repo = RunnerRepository(session)
            if isinstance(event, RunnerHeartbeat):
                await repo.record_heartbeat(event, utcnow())
            elif isinstance(event, RunnerStopped):
                await repo.mark_stopped(event.node_id, event.occurred_at)

    async def list_runners(_: Empty) -> RunnerNodeList:
        async with db.unit_of_work() as session:
            rows = await RunnerRepository(session).all()
        now = utcnow()
        return RunnerNodeList(
            results=[to_node(r, now, settings.runner_offline_after) for r in rows]
        )

    await rt.bus.consume(RUNNER_CONSUMER, RUNNER_EVENTS, on_runner_event)
    await rt.bus.serve(LIST_RUNNERS, list_runners)
