"""Publishes the runner's instance and prediction events in the order they happened.

State changes are decided synchronously and queued here, so two transitions can never be
published out of order or with a gap; one task publishes them, retrying while NATS is away
(JetStream drops the duplicates a retry may cause, by event id).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

from nats.errors import MaxPayloadError

from cogplane.common.bus import Bus
from cogplane.common.contracts.base import Event
from cogplane.common.contracts.predictions import TERMINAL, PredictionUpdated
from cogplane.common.retry import RetryPolicy

logger = logging.getLogger(__name__)
RETRY = RetryPolicy(initial=0.1, maximum=2.0)


def shrunk(event: Event, size: int) -> Event | None:
    """What to publish instead of an event too large for NATS (None: nothing).

    Only prediction updates carry model output; a running one is skipped (the next carries the
    same and more), a final one becomes a failure that says why.
    """
    if not isinstance(event, PredictionUpdated) or event.status not in TERMINAL:
        return None
    error = f"The prediction's output and logs are too large to report ({size} bytes)"
    return event.model_copy(update={"status": "failed", "output": None, "logs": "", "error": error})


class Outbox:
    """A FIFO of events and the task that publishes them."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._queue: asyncio.Queue[tuple[Event, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start publishing."""
        self._task = asyncio.create_task(self._run(), name="runner:instance-events")

    def put(self, event: Event) -> asyncio.Future[None]:
        """Queue ``event``; the future resolves once it is stored in JetStream."""
        published = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((event, published))
        return published

    async def _run(self) -> None:
        while True:
            event, published = await self._queue.get()
            await self._publish(event)
            if not published.done():
                published.set_result(None)
            self._queue.task_done()

    async def _publish(self, event: Event) -> None:
        for attempt in itertools.count(1):
            try:
                await self.bus.publish(event)
                return
            except MaxPayloadError:
                size = len(event.model_dump_json())
                logger.warning(
                    "%s %s is too large to publish (%d bytes)", event.type, event.id, size
                )
                replacement = shrunk(event, size)
                if replacement is None:
                    return
                event = replacement
            except Exception as exc:
                logger.warning("cannot publish %s yet (attempt %d): %s", event.type, attempt, exc)
                await asyncio.sleep(RETRY.delay(attempt))

    async def close(self, timeout: float) -> None:
        """Publish what is queued (waiting up to ``timeout`` seconds), then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
