"""Carries out ``decide`` for every change of a prediction with a webhook.

It is fed by ``Work.announce`` after each commit, in the scheduler replica that made the change,
so every change is looked at once. ``notice`` never waits: sends run as tasks, chained per
prediction so that a receiver sees them in order (``completed`` last). Intermediate events are
sent once and never retried; ``completed`` is handed to JetStream (``WebhookDue``) and delivered
with retries by a durable consumer. What was sent is remembered in memory only: after a restart
at worst an intermediate event is sent again, which receivers must tolerate anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from cogplane.common.contracts.base import new_id
from cogplane.common.contracts.predictions import TERMINAL, PredictionRecord
from cogplane.common.errors import CogplaneError
from cogplane.scheduler.webhooks.decide import THROTTLED, Delivered, decide
from cogplane.scheduler.webhooks.delivery import DeliveryFailed

logger = logging.getLogger(__name__)
MAX_TRACKED = 50_000

Send = Callable[[PredictionRecord, str], Awaitable[None]]
PublishDue = Callable[[str], Awaitable[None]]


@dataclass
class _Entry:
    record: PredictionRecord
    sent: Delivered = field(default_factory=Delivered)
    last_sent: float | None = None
    timer: asyncio.TimerHandle | None = None
    chain: asyncio.Task[None] | None = None


class Dispatcher:
    """Per prediction with a webhook: what was sent, the throttle timer, and the sends.

    Args:
        send: Delivers a record once (raises on failure).
        publish_due: Hands a prediction's ``completed`` webhook to the durable consumer.
        throttle: Least seconds between two deliveries that carry output or logs.
        clock: Monotonic seconds (tests may pass their own).
    """

    def __init__(
        self,
        send: Send,
        publish_due: PublishDue,
        throttle: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.send = send
        self.publish_due = publish_due
        self.throttle = throttle
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def notice(self, record: PredictionRecord) -> None:
        """A committed change of a prediction (never blocks)."""
        if record.webhook is None or record.id in self._finished:
            return
        entry = self._entries.get(record.id)
        if entry is None:
            entry = self._entries[record.id] = _Entry(record)
            if len(self._entries) > MAX_TRACKED:
                self._forget(next(iter(self._entries)))
        elif entry.record.status in TERMINAL and record.status not in TERMINAL:
            return  # a late notice of an earlier state
        entry.record = record
        if entry.timer is not None and record.status in TERMINAL:
            entry.timer.cancel()  # completion is never throttled
            entry.timer = None
        if entry.timer is None:
            self._decide(entry)

    def _decide(self, entry: _Entry) -> None:
        now = self.clock()
        since = None if entry.last_sent is None else now - entry.last_sent
        record = entry.record
        decision = decide(record.webhook_events_filter, entry.sent, record, since, self.throttle)
        entry.sent = decision.state
        if decision.events & THROTTLED:
            entry.last_sent = now
        if "completed" in decision.events:
            self._then(entry, self._publish(record.id))
        elif decision.events:
            self._then(entry, self._send_once(record, sorted(decision.events)))
        if decision.wait is not None:
            loop = asyncio.get_running_loop()
            entry.timer = loop.call_later(decision.wait, self._on_timer, record.id)
        elif entry.sent.finished:
            self._forget(record.id)
            self._finished[record.id] = None
            while len(self._finished) > MAX_TRACKED:
                self._finished.popitem(last=False)

    def _on_timer(self, prediction_id: str) -> None:
        entry = self._entries.get(prediction_id)
        if entry is not None:
            entry.timer = None
            self._decide(entry)

    def _forget(self, prediction_id: str) -> None:
        entry = self._entries.pop(prediction_id, None)
        if entry is not None and entry.timer is not None:
            entry.timer.cancel()

    def _then(self, entry: _Entry, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` after the prediction's earlier sends: the receiver sees them in order."""
        entry.chain = asyncio.create_task(_after(entry.chain, work))
        self._tasks.add(entry.chain)
        entry.chain.add_done_callback(self._tasks.discard)

    async def _send_once(self, record: PredictionRecord, events: list[str]) -> None:
        try:
            await self.send(record, f"msg_{new_id()}")
        except DeliveryFailed as exc:  # intermediate events are not retried
            logger.info("webhook %s of %s not delivered: %s", events, record.id, exc)
        except CogplaneError as exc:
            logger.warning("webhook %s of %s not sent: %s", events, record.id, exc.detail)

    async def _publish(self, prediction_id: str) -> None:
        try:
            await self.publish_due(prediction_id)
        except Exception:
            logger.exception("could not queue the completed webhook of %s", prediction_id)

    @property
    def tracked(self) -> int:
        """Predictions with something still to decide or to send."""
        return len(self._entries)

    async def stop(self, grace: float) -> None:
        """Stop the timers, let sends under way finish within ``grace`` seconds, cancel the rest."""
        for entry in self._entries.values():
            if entry.timer is not None:
                entry.timer.cancel()
        self._entries.clear()
        pending = set(self._tasks)
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


async def _after(previous: asyncio.Task[None] | None, work: Coroutine[Any, Any, None]) -> None:
    try:
        if previous is not None:
            await asyncio.wait([previous])  # whatever became of it
        await work
    except Exception:
        logger.exception("webhook work failed")
    finally:
        work.close()  # cancelled before it started: it must not linger un-awaited
