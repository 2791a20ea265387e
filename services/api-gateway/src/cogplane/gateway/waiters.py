"""Requests waiting for a prediction to finish (`Prefer: wait`), fed by the scheduler's notices."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from cogplane.common.contracts.predictions import TERMINAL, PredictionChanged, PredictionRecord


class Waiters:
    """Per prediction, the futures of requests waiting for it to finish."""

    def __init__(self) -> None:
        self._waiting: defaultdict[str, list[asyncio.Future[PredictionRecord]]] = defaultdict(list)

    def on_change(self, notice: PredictionChanged) -> None:
        """Resolve the waiters of a prediction that reached a terminal state."""
        record = notice.record
        if record.status not in TERMINAL:
            return
        for future in self._waiting.pop(record.id, []):
            if not future.done():
                future.set_result(record)

    async def until_done(self, prediction_id: str, timeout: float) -> PredictionRecord | None:
        """The terminal record, or None if it did not finish within ``timeout`` seconds."""
        future: asyncio.Future[PredictionRecord] = asyncio.get_running_loop().create_future()
        self._waiting[prediction_id].append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            waiting = self._waiting.get(prediction_id)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._waiting[prediction_id]
