"""The runner's FastAPI app."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from cogplane.common.db import utcnow
from cogplane.common.service import Runtime, ServiceSpec, create_service_app
from cogplane.runner import consumers
from cogplane.runner.build.builder import Builder
from cogplane.runner.config import RunnerSettings
from cogplane.runner.hardware import detect_gpus, node_capacity
from cogplane.runner.heartbeat import Heartbeat
from cogplane.runner.instances import consumers as instance_consumers
from cogplane.runner.instances.capacity import Capacity
from cogplane.runner.instances.receiver import WebhookReceiver
from cogplane.runner.instances.service import InstanceManager


def _settings(rt: Runtime) -> RunnerSettings:
    settings = rt.settings
    assert isinstance(settings, RunnerSettings)
    return settings


async def _start(rt: Runtime) -> None:
    settings = _settings(rt)
    gpus = await asyncio.to_thread(detect_gpus)
    capacity = node_capacity(settings.cpu_slots, settings.simulated_gpus, gpus)
    builder = Builder(rt.bus, Path(settings.data_dir), settings.cog_version)
    rt.extras["builder"] = builder
    await consumers.register(rt, builder)
    manager = InstanceManager(rt.bus, builder, settings, Capacity(settings.node_id, capacity, gpus))
    receiver = WebhookReceiver(manager, settings.webhook_port)
    manager.start(await receiver.start())
    rt.extras["instances"] = manager
    rt.extras["webhooks"] = receiver
    await instance_consumers.register(rt, manager)
    # Announced last: the scheduler may send work the moment it hears of the node.
    heartbeat = Heartbeat(
        rt.bus, settings.node_id, capacity, settings.heartbeat_interval.total_seconds(), utcnow()
    )
    rt.extras["heartbeat"] = heartbeat
    rt.spawn(heartbeat.run(), "heartbeat")


async def _stop(rt: Runtime) -> None:
    # Instances drain first: their webhooks still arrive on the receiver, and the node keeps
    # announcing itself (draining) until they are gone.
    heartbeat: Heartbeat = rt.extras["heartbeat"]
    heartbeat.draining = True
    manager: InstanceManager = rt.extras["instances"]
    await manager.stop(rt.settings.shutdown_grace.total_seconds())
    receiver: WebhookReceiver = rt.extras["webhooks"]
    await receiver.stop()
    await heartbeat.stop()


SPEC = ServiceSpec(
    name="runner",
    title="Cogplane runner",
    description=(
        "Node agent: builds version environments, starts and stops Cog instances on this node's "
        "hardware, runs predictions on them and reports their state. Announces itself with "
        "heartbeats on cogplane.events.runners.heartbeat."
    ),
    uses_database=False,
    start=_start,
    stop=_stop,
    handlers=[
        f"consumer {consumers.BUILD_CONSUMER}: {consumers.BUILD_REQUESTS}",
        "publishes cogplane.events.builds.logged and cogplane.events.builds.finished",
        "publishes cogplane.events.runners.heartbeat and cogplane.events.runners.stopped",
        *(f"cogplane.rpc.runner.<node_id>.{name}" for name in instance_consumers.CALLS),
        "publishes cogplane.events.instances.state and cogplane.events.predictions.updated",
    ],
)


def create_app(settings: RunnerSettings | None = None) -> FastAPI:
    """The runner app for ``settings`` (read from the environment when omitted)."""
    return create_service_app(SPEC, settings or RunnerSettings())
