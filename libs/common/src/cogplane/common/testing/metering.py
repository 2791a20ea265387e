"""The metering invariant, checked over every instance a running platform has had.

For each instance that ended: no transition is missing, setup + idle + processing equals its
wall-clock lifetime from the runner's timestamps within 100 ms, and its cost is its charged
time at its price.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from cogplane.common.bus import Bus
from cogplane.common.contracts import billing as b
from cogplane.common.contracts.base import Empty

TOLERANCE_MS = 100


async def _settle(bus: Bus, timeout: float) -> None:
    """Wait until billing has taken in everything published so far (its count stops moving)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = -1
    while loop.time() < deadline:
        status = await bus.request(b.INGEST_STATUS, Empty())
        if status.events_recorded == last:
            return
        last = status.events_recorded
        await asyncio.sleep(1.0)


async def check_metering(nats_url: str, timeout: float = 30) -> list[b.InstanceUsage]:
    """Raise AssertionError where the invariant fails; the instances checked."""
    bus = Bus(nats_url, "metering-check", timedelta(seconds=30))
    await bus.connect()
    try:
        await _settle(bus, timeout)
        found = await bus.request(b.INSTANCE_USAGE, b.InstanceUsageQuery())
        problems = []
        for usage in found.results:
            if not usage.ended:
                continue
            if usage.missing_seqs:
                problems.append(f"{usage.instance_id}: transitions {usage.missing_seqs} missing")
                continue
            parts = usage.setup_ms + usage.idle_ms + usage.processing_ms
            if usage.lifetime_ms is None or abs(parts - usage.lifetime_ms) > TOLERANCE_MS:
                problems.append(
                    f"{usage.instance_id}: parts {parts} ms, lifetime {usage.lifetime_ms} ms"
                )
        assert not problems, "metering is inconsistent:\n" + "\n".join(problems)
        return found.results
    finally:
        await bus.close()
