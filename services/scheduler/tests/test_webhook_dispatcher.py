"""The dispatcher around ``decide``: ordering, coalescing, and the hand-off of completion."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from cogplane.common.contracts.predictions import PredictionRecord
from cogplane.common.testing.wait import eventually
from cogplane.scheduler.webhooks.delivery import DeliveryFailed
from cogplane.scheduler.webhooks.dispatcher import Dispatcher

THROTTLE = 0.2


def record(
    status: str = "processing", output: Any = None, events: list[str] | None = None, pid: str = "p"
) -> PredictionRecord:
    return PredictionRecord.model_validate(
        {
            "id": pid,
            "owner_account_id": "a1",
            "owner": "alice",
            "model": "alice/m",
            "version": "v" * 64,
            "target": "version:v",
            "input": {},
            "status": status,
            "output": output,
            "created_at": datetime(2026, 1, 1, tzinfo=UTC),
            "webhook": "https://example.test/hook",
            "webhook_events_filter": events or [],
        }
    )


class Recorder:
    """Stands in for the sender and for JetStream."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.delay = delay
        self.fail = fail
        self.log: list[tuple[float, str, Any]] = []

    async def send(self, rec: PredictionRecord, message_id: str) -> None:
        await asyncio.sleep(self.delay)
        self.log.append((time.monotonic(), rec.status, rec.output))
        if self.fail:
            raise DeliveryFailed("no")

    async def publish(self, prediction_id: str) -> None:
        self.log.append((time.monotonic(), "due", prediction_id))


async def logged(out: Recorder, count: int) -> None:
    async def probe() -> bool:
        return len(out.log) >= count

    await eventually(probe, timeout=2)


async def test_changes_inside_the_window_are_coalesced_into_the_latest() -> None:
    out = Recorder()
    dispatcher = Dispatcher(out.send, out.publish, THROTTLE)
    for n in range(1, 6):
        dispatcher.notice(record(output=list(range(n))))
        await asyncio.sleep(0.01)
    await logged(out, 2)
    (t1, _, first), (t2, _, second) = out.log
    assert first == [0]
    assert second == [0, 1, 2, 3, 4]
    assert t2 - t1 >= THROTTLE * 0.9
    await asyncio.sleep(THROTTLE * 1.5)
    assert len(out.log) == 2  # nothing else was owed
    dispatcher.notice(record("succeeded", output=list(range(5))))
    await logged(out, 3)
    assert out.log[-1][1:] == ("due", "p")
    assert dispatcher.tracked == 0


async def test_completion_supersedes_what_the_throttle_holds_back() -> None:
    out = Recorder()
    dispatcher = Dispatcher(out.send, out.publish, THROTTLE)
    dispatcher.notice(record(output=["a"]))
    dispatcher.notice(record(output=["a", "b"]))  # deferred
    dispatcher.notice(record("succeeded", output=["a", "b", "c"]))
    await logged(out, 2)
    await asyncio.sleep(THROTTLE * 1.5)
    assert [entry[1:] for entry in out.log] == [("processing", ["a"]), ("due", "p")]


async def test_completion_waits_for_sends_under_way() -> None:
    out = Recorder(delay=0.1)
    dispatcher = Dispatcher(out.send, out.publish, THROTTLE)
    dispatcher.notice(record("starting", events=["start", "completed"]))
    dispatcher.notice(record("succeeded", events=["start", "completed"]))
    await logged(out, 2)
    assert [entry[1] for entry in out.log] == ["starting", "due"]


async def test_late_and_repeated_notices_change_nothing() -> None:
    out = Recorder()
    dispatcher = Dispatcher(out.send, out.publish, THROTTLE)
    dispatcher.notice(record("succeeded", output="x"))
    dispatcher.notice(record("processing", output="x"))
    dispatcher.notice(record("succeeded", output="x"))
    await asyncio.sleep(0.05)
    assert [entry[1:] for entry in out.log] == [("due", "p")]


async def test_failed_intermediate_sends_are_not_retried() -> None:
    out = Recorder(fail=True)
    dispatcher = Dispatcher(out.send, out.publish, THROTTLE)
    dispatcher.notice(record(output=["a"], events=["output"]))
    await asyncio.sleep(THROTTLE * 2)
    assert len(out.log) == 1


async def test_predictions_without_webhooks_are_ignored() -> None:
    out = Recorder()
    dispatcher = Dispatcher(out.send, out.publish, THROTTLE)
    dispatcher.notice(record(output=["a"]).model_copy(update={"webhook": None}))
    assert dispatcher.tracked == 0
    await dispatcher.stop(1.0)
