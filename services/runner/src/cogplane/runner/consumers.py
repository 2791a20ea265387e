"""The runner's NATS handlers: build requests, taken by one runner each."""

from __future__ import annotations

from datetime import timedelta

from cogplane.common.contracts.models import BuildRequested
from cogplane.common.service import Runtime
from cogplane.runner.build.builder import Builder

BUILD_REQUESTS = "cogplane.events.builds.requested"
# One durable consumer shared by every runner: each request goes to one of them.
BUILD_CONSUMER = "runner-builds"


async def register(rt: Runtime, builder: Builder) -> None:
    """Take build requests and report each build's logs and result."""

    async def on_build_requested(data: bytes, _: dict[str, str]) -> None:
        request = BuildRequested.model_validate_json(data)
        await rt.bus.publish(await builder.build(request))

    await rt.bus.consume(
        BUILD_CONSUMER,
        BUILD_REQUESTS,
        on_build_requested,
        batch=1,
        max_deliver=3,
        ack_wait=timedelta(seconds=60),
        progress_every=timedelta(seconds=15),
    )
