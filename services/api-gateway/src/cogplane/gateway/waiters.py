"""Requests waiting for a prediction to finish (``Prefer: wait``).

Two sources wake them. The scheduler's PredictionChanged notice comes after it has recorded the
outcome. For a success, the runner's own PredictionUpdated event comes a hop earlier: it is already
durable in JetStream (the scheduler will record it whatever happens), so answering from it is safe
and saves the round trip through the scheduler. Failures and cancellations wait for the scheduler,
which may still retry a prediction whose instance died before it started.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from cogplane.common.contracts.predictions import (
    TERMINAL,
    PredictionChanged,
    PredictionRecord,
    PredictionUpdated,
)


@dataclass
class _Waiting:
    record: PredictionRecord
    futures: list[asyncio.Future[PredictionRecord]] = field(default_factory=list)


def merged(record: PredictionRecord, update: PredictionUpdated) -> PredictionRecord:
    """The record as the scheduler will store it once it applies ``update``."""
    completed = update.completed_at or record.completed_at
    metrics = {**record.metrics, **update.metrics}
    if completed is not None:
        metrics["total_time"] = round((completed - record.created_at).total_seconds(), 6)
    return record.model_copy(
        update={
            "status": update.status,
            "output": update.output,
            "logs": update.logs,
            "error": update.error,
            "started_at": update.started_at or record.started_at,
            "completed_at": completed,
            "metrics": metrics,
            "instance_id": update.instance_id,
        }
    )


class Waiters:
    """Per prediction, the futures of requests waiting for it to finish."""

    def __init__(self) -> None:
        self._waiting: dict[str, _Waiting] = {}

    def on_change(self, notice: PredictionChanged) -> None:
        """The scheduler recorded a change: resolve waiters when it is terminal."""
        if notice.record.status in TERMINAL:
            self._resolve(notice.record)

    def on_update(self, update: PredictionUpdated) -> None:
        """A runner reported a success: resolve waiters at once."""
        waiting = self._waiting.get(update.prediction_id)
        if waiting is not None and update.status == "succeeded":
            self._resolve(merged(waiting.record, update))

    def _resolve(self, record: PredictionRecord) -> None:
        waiting = self._waiting.pop(record.id, None)
        for future in waiting.futures if waiting else []:
            if not future.done():
                future.set_result(record)

    async def until_done(self, record: PredictionRecord, timeout: float) -> PredictionRecord | None:
        """The terminal record, or None if it did not finish within ``timeout`` seconds."""
        future: asyncio.Future[PredictionRecord] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(record.id, _Waiting(record)).futures.append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            waiting = self._waiting.get(record.id)
            if waiting is not None and future in waiting.futures:
                waiting.futures.remove(future)
                if not waiting.futures:
                    del self._waiting[record.id]
