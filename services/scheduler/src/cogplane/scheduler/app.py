"""The scheduler's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from cogplane.common.contracts.runners import LIST_RUNNERS
from cogplane.common.db import migrations_dir
from cogplane.common.service import Runtime, ServiceSpec, create_service_app
from cogplane.scheduler import consumers, retention
from cogplane.scheduler.config import SchedulerSettings
from cogplane.scheduler.models import SCHEMA
from cogplane.scheduler.webhooks import consumers as webhooks
from cogplane.scheduler.work import consumers as work


async def _start(rt: Runtime) -> None:
    await consumers.register(rt)
    await webhooks.register(rt)  # before work, whose announcements it follows
    await work.register(rt)
    retention.register(rt)


SPEC = ServiceSpec(
    name="scheduler",
    title="Cogplane scheduler",
    description=(
        "Admits predictions into per-target queues, places instances on runner nodes and hands "
        "each prediction to exactly one instance. Keeps the inventory of runner nodes. Delivers "
        "webhooks and removes expired prediction data."
    ),
    uses_database=True,
    schema=SCHEMA,
    migrations=migrations_dir(__file__),
    start=_start,
    handlers=[
        LIST_RUNNERS.subject,
        f"consumer {consumers.RUNNER_CONSUMER}: {consumers.RUNNER_EVENTS}",
        *(rpc.subject for rpc in work.RPCS),
        f"consumer scheduler-work: {work.PREDICTION_UPDATES}, {work.INSTANCE_STATES}",
        *(rpc.subject for rpc in webhooks.RPCS),
        f"consumer {webhooks.DUE_CONSUMER}: {webhooks.DUE_EVENTS}",
    ],
)


def create_app(settings: SchedulerSettings | None = None) -> FastAPI:
    """The scheduler app for ``settings`` (read from the environment when omitted)."""
    return create_service_app(SPEC, settings or SchedulerSettings())
