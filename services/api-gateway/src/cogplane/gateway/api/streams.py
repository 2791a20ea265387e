"""``/v1/predictions/{id}/stream``: a prediction's output and logs as server-sent events.

What Replicate's clients need (research notes §1.3, §4.5, §8.7): ``text/event-stream``; only the
events ``output``, ``logs``, ``error`` and ``done``, each with an ``id`` (Python drops events
before the first id and fails on any other name); comment lines as keep-alives; and a URL that
works without an ``Authorization`` header (Node sends none), so the URL carries the credential:
a token that is an HMAC of the prediction id, checked without a lookup.

Event ids are the position in the prediction after the event, ``<outputs sent>:<log chars
sent>``, so a client that reconnects with ``Last-Event-ID`` resumes exactly where it was.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from cogplane.common.bus import Bus
from cogplane.common.contracts.base import Empty
from cogplane.common.contracts.predictions import TERMINAL, PredictionChanged, PredictionRecord
from cogplane.common.contracts.webhooks import (
    GET_STREAM_KEY,
    GET_STREAMED_PREDICTION,
    StreamRef,
)
from cogplane.common.errors import CogplaneError, NotFound
from cogplane.common.predictions_json import stream_token_valid
from cogplane.common.service import Runtime
from cogplane.gateway.deps import BusDep

router = APIRouter(prefix="/v1", tags=["predictions"])
KEEPALIVE_SECONDS = 10.0
EVENT_STREAM = "text/event-stream"


# -- what to send --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """How much of a prediction a client has been sent: outputs, and characters of logs."""

    outputs: int = 0
    logs: int = 0

    @property
    def id(self) -> str:
        """The event id that stands for this position."""
        return f"{self.outputs}:{self.logs}"

    @classmethod
    def parse(cls, value: str | None) -> Cursor:
        """The position a ``Last-Event-ID`` names (the start when it names none)."""
        outputs, _, logs = (value or "").strip().partition(":")
        if outputs.isdigit() and logs.isdigit():
            return cls(int(outputs), int(logs))
        return cls()


def frame(event: str, data: str, event_id: str) -> str:
    """One server-sent event (multi-line data as several ``data:`` lines)."""
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return f"event: {event}\nid: {event_id}\n" + "".join(f"data: {x}\n" for x in lines) + "\n"


def output_items(output: Any) -> list[Any]:
    """The chunks of an output: an iterator's list as it grows, or one value."""
    if output is None:
        return []
    return output if isinstance(output, list) else [output]


def _text(item: Any) -> str:
    return item if isinstance(item, str) else json.dumps(item)


def frames(record: PredictionRecord, cursor: Cursor) -> tuple[list[str], Cursor, bool]:
    """The events that bring a client at ``cursor`` up to ``record``, the new cursor, and
    whether the stream is over."""
    found = []
    if len(record.logs) > cursor.logs:
        text, cursor = record.logs[cursor.logs :], Cursor(cursor.outputs, len(record.logs))
        found.append(frame("logs", text, cursor.id))
    items = output_items(record.output)
    for index in range(cursor.outputs, len(items)):
        cursor = Cursor(index + 1, cursor.logs)
        found.append(frame("output", _text(items[index]), cursor.id))
    if record.status not in TERMINAL:
        return found, cursor, False
    done: dict[str, str] = {}
    if record.status == "failed":
        detail = record.error or "The prediction failed"
        found.append(frame("error", json.dumps({"detail": detail}), cursor.id))
        done = {"reason": "error"}
    elif record.status == "canceled":
        done = {"reason": "canceled"}
    found.append(frame("done", json.dumps(done), cursor.id))
    return found, cursor, True


# -- following predictions -----------------------------------------------------------------------


class _Listener:
    """The latest record of one prediction that a stream has not taken yet."""

    def __init__(self, prediction_id: str) -> None:
        self.prediction_id = prediction_id
        self.latest: PredictionRecord | None = None
        self.changed = asyncio.Event()

    def offer(self, record: PredictionRecord) -> None:
        self.latest = record
        self.changed.set()

    async def next(self, timeout: float) -> PredictionRecord | None:
        """The newest record, or None if nothing changed within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self.changed.wait(), timeout)
        except TimeoutError:
            return None
        self.changed.clear()
        record, self.latest = self.latest, None
        return record


class StreamHub:
    """The open streams of this gateway, fed by the scheduler's ``PredictionChanged`` notices.

    Args:
        keepalive: Seconds between comment lines while nothing happens (Python's client gives
            up after 30 s of silence); also how often a stream re-reads its prediction, in case
            a notice was missed.
    """

    def __init__(self, keepalive: float = KEEPALIVE_SECONDS) -> None:
        self.keepalive = keepalive
        self.key: bytes | None = None
        self._listeners: defaultdict[str, set[_Listener]] = defaultdict(set)

    def on_change(self, notice: PredictionChanged) -> None:
        """Hand a changed prediction to the streams that follow it."""
        for listener in self._listeners.get(notice.record.id, ()):
            listener.offer(notice.record)

    def listen(self, prediction_id: str) -> _Listener:
        listener = _Listener(prediction_id)
        self._listeners[prediction_id].add(listener)
        return listener

    def close(self, listener: _Listener) -> None:
        listeners = self._listeners.get(listener.prediction_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[listener.prediction_id]

    def __len__(self) -> int:
        return sum(len(s) for s in self._listeners.values())


def _hub(request: Request) -> StreamHub:
    runtime: Runtime = request.app.state.runtime
    hub: StreamHub = runtime.extras["streams"]
    return hub


async def stream_key(request: Request, bus: BusDep) -> bytes:
    """The key of stream URL tokens (the scheduler's, asked for once)."""
    hub = _hub(request)
    if hub.key is None:
        reply = await bus.request(GET_STREAM_KEY, Empty())
        hub.key = base64.b64decode(reply.key)
    return hub.key


StreamKeyDep = Annotated[bytes, Depends(stream_key)]


async def _events(
    hub: StreamHub,
    listener: _Listener,
    bus: Bus,
    ref: StreamRef,
    record: PredictionRecord,
    at: Cursor,
) -> AsyncIterator[str]:
    try:
        while True:
            found, at, over = frames(record, at)
            for text in found:
                yield text
            if over:
                return
            newer = await listener.next(hub.keepalive)
            if newer is None:
                yield ": ping\n\n"
                newer = await _reread(bus, ref)
            record = newer or record
    finally:
        hub.close(listener)


async def _reread(bus: Bus, ref: StreamRef) -> PredictionRecord | None:
    try:
        return await bus.request(GET_STREAMED_PREDICTION, ref)
    except CogplaneError:
        return None  # the scheduler is unreachable for now: keep the stream open


@router.get(
    "/predictions/{prediction_id}/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {EVENT_STREAM: {}}, "description": "Server-sent events"}},
)
async def stream_prediction(
    request: Request,
    prediction_id: str,
    bus: BusDep,
    key: StreamKeyDep,
    token: Annotated[str, Query(max_length=100)] = "",
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=100)] = None,
) -> StreamingResponse:
    """Output and logs of a prediction as they come (the URL is its urls.stream)."""
    if not token or not stream_token_valid(key, prediction_id, token):
        raise NotFound(f"Prediction {prediction_id} not found")
    hub = _hub(request)
    listener = hub.listen(prediction_id)  # before reading, so no change falls in between
    ref = StreamRef(prediction_id=prediction_id, token=token)
    try:
        record = await bus.request(GET_STREAMED_PREDICTION, ref)
    except BaseException:
        hub.close(listener)
        raise
    return StreamingResponse(
        _events(hub, listener, bus, ref, record, Cursor.parse(last_event_id)),
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
