"""The runner's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from cogplane.common.db import utcnow
from cogplane.common.service import Runtime, ServiceSpec, create_service_app
from cogplane.runner import consumers
from cogplane.runner.config import RunnerSettings
from cogplane.runner.hardware import node_capacity
from cogplane.runner.heartbeat import Heartbeat


async def _start(rt: Runtime) -> None:
    settings = rt.settings
    assert isinstance(settings, RunnerSettings)
    capacity = node_capacity(settings.cpu_slots, settings.simulated_gpus)
    heartbeat = Heartbeat(
        rt.bus, settings.node_id, capacity, settings.heartbeat_interval.total_seconds(), utcnow()
    )
    rt.extras["heartbeat"] = heartbeat
    rt.spawn(heartbeat.run(), "heartbeat")
    await consumers.register(rt)


async def _stop(rt: Runtime) -> None:
    heartbeat: Heartbeat = rt.extras["heartbeat"]
    await heartbeat.stop()


SPEC = ServiceSpec(
    name="runner",
    title="Cogplane runner",
    description=(
        "Node agent: builds version environments, starts and stops Cog instances on this node's "
        "hardware and reports their state. Announces itself with heartbeats on "
        "cogplane.events.runners.heartbeat."
    ),
    uses_database=False,
    start=_start,
    stop=_stop,
    handlers=[
        f"consumer {consumers.BUILD_CONSUMER}: {consumers.BUILD_REQUESTS}",
        "publishes cogplane.events.builds.logged and cogplane.events.builds.finished",
        "publishes cogplane.events.runners.heartbeat and cogplane.events.runners.stopped",
    ],
)


def create_app(settings: RunnerSettings | None = None) -> FastAPI:
    """The runner app for ``settings`` (read from the environment when omitted)."""
    return create_service_app(SPEC, settings or RunnerSettings())
