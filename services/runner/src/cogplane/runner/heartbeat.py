"""The loop that announces this node to the scheduler."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import datetime

from cogplane.common.bus import Bus
from cogplane.common.contracts.runners import HardwareCapacity, RunnerHeartbeat, RunnerStopped

logger = logging.getLogger(__name__)


class Heartbeat:
    """Publishes a heartbeat at start and every ``interval`` seconds; ``stop`` says goodbye."""

    def __init__(
        self,
        bus: Bus,
        node_id: str,
        capacity: list[HardwareCapacity],
        interval: float,
        started_at: datetime,
    ) -> None:
        self.bus = bus
        self.node_id = node_id
        self.capacity = capacity
        self.interval = interval
        self.started_at = started_at
        self.draining = False

    def beat(self) -> RunnerHeartbeat:
        """The heartbeat describing this node now."""
        return RunnerHeartbeat(
            node_id=self.node_id,
            hostname=socket.gethostname(),
            started_at=self.started_at,
            capacity=self.capacity,
            draining=self.draining,
        )

    async def run(self) -> None:
        """Publish until cancelled; a failed publish is retried at the next tick."""
        while True:
            try:
                await self.bus.publish(self.beat())
            except Exception as exc:
                logger.warning("heartbeat of %s not published: %s", self.node_id, exc)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        """Tell the scheduler this node is going away."""
        self.draining = True
        try:
            await self.bus.publish(RunnerStopped(node_id=self.node_id))
        except Exception as exc:
            logger.warning("stop of %s not announced: %s", self.node_id, exc)
