"""Server-sent event streams of predictions, read as Replicate's Python client reads them.

The gateway runs under uvicorn (an in-process ASGI transport would buffer the whole stream)
next to a scheduler; both have a NATS server of their own. Runner reports are simulated by
publishing ``PredictionUpdated`` events for a prediction tied to a made-up instance.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from replicate.client import Client
from replicate.stream import EventSource, ServerSentEvent
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import cogplane.scheduler
from cogplane.common.bus import Bus
from cogplane.common.contracts import predictions as p
from cogplane.common.contracts.base import Empty, new_id
from cogplane.common.contracts.models import Viewer
from cogplane.common.contracts.webhooks import GET_STREAM_KEY
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from cogplane.common.predictions_json import stream_token
from cogplane.common.testing.apps import running
from cogplane.common.testing.fixtures import migrate_service
from cogplane.common.testing.served import served
from cogplane.common.testing.wait import eventually
from cogplane.gateway.api.predictions import prediction_out
from cogplane.gateway.api.streams import Cursor, StreamHub, frame, frames
from cogplane.gateway.app import create_app as create_gateway
from cogplane.gateway.config import GatewaySettings
from cogplane.scheduler.app import create_app as create_scheduler
from cogplane.scheduler.config import SchedulerSettings
from cogplane.scheduler.models import SCHEMA

EVENT_NAMES = {"output", "logs", "error", "done"}

# -- the pure parts --------------------------------------------------------------------------


def record(status: str = "processing", output: Any = None, logs: str = "") -> p.PredictionRecord:
    return p.PredictionRecord.model_validate(
        {
            "id": "p1",
            "owner_account_id": "a1",
            "owner": "alice",
            "model": "alice/m",
            "version": "v" * 64,
            "target": "version:v",
            "input": {},
            "status": status,
            "output": output,
            "logs": logs,
            "error": "boom" if status == "failed" else None,
            "created_at": datetime(2026, 1, 1, tzinfo=UTC),
            "streaming": True,
        }
    )


def test_cursor_round_trips_and_ignores_garbage() -> None:
    assert Cursor.parse(Cursor(3, 120).id) == Cursor(3, 120)
    for garbage in (None, "", "x", "1:", ":2", "-1:2", "1:2:3", "a:b"):
        assert Cursor.parse(garbage) == Cursor()


def test_frames_follow_the_record_from_any_position() -> None:
    rec = record(output=["a", {"n": 1}], logs="one\ntwo\n")
    found, at, over = frames(rec, Cursor())
    assert found == [
        frame("logs", "one\ntwo\n", "0:8"),
        frame("output", "a", "1:8"),
        frame("output", '{"n": 1}', "2:8"),
    ]
    assert (at, over) == (Cursor(2, 8), False)
    assert frames(rec, at) == ([], at, False)
    assert frames(rec, Cursor(1, 4))[0] == [frame("logs", "two\n", "1:8"), found[2]]


@pytest.mark.parametrize(
    ("status", "tail"),
    [
        ("succeeded", ["event: done\nid: 1:0\ndata: {}\n\n"]),
        ("canceled", ['event: done\nid: 1:0\ndata: {"reason": "canceled"}\n\n']),
        (
            "failed",
            [
                'event: error\nid: 1:0\ndata: {"detail": "boom"}\n\n',
                'event: done\nid: 1:0\ndata: {"reason": "error"}\n\n',
            ],
        ),
    ],
)
def test_frames_end_every_stream_with_done(status: str, tail: list[str]) -> None:
    found, _, over = frames(record(status, output="x"), Cursor())
    assert over
    assert found == ["event: output\nid: 1:0\ndata: x\n\n", *tail]


def test_frame_splits_lines_the_way_clients_join_them() -> None:
    assert frame("logs", "a\r\nb\rc\n", "0:1") == (
        "event: logs\nid: 0:1\ndata: a\ndata: b\ndata: c\ndata: \n\n"
    )


def test_stream_url_only_for_streaming_models() -> None:
    key = b"k" * 32
    streaming = prediction_out(record(), "https://api.example", stream_key=key)
    token = stream_token(key, "p1")
    assert streaming.urls["stream"] == (
        f"https://api.example/v1/predictions/p1/stream?token={token}"
    )
    plain = record().model_copy(update={"streaming": False})
    assert "stream" not in prediction_out(plain, "https://api.example", stream_key=key).urls
    assert "stream" not in prediction_out(record(), "https://api.example").urls


# -- against running services ----------------------------------------------------------------


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(Path(tmp_path_factory.mktemp("stream-nats")) / "nats", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def scheduler_settings(
    postgres: EmbeddedPostgres, migrated_schemas: set[str], own_nats: EmbeddedNats
) -> SchedulerSettings:
    migrate_service(postgres, migrated_schemas, cogplane.scheduler.__file__, SCHEMA)
    return SchedulerSettings(database_url=postgres.url, nats_url=own_nats.url, port=0)


@dataclass
class Stack:
    bus: Bus
    gateway: FastAPI
    url: str
    engine: AsyncEngine
    key: bytes = field(default=b"")

    @property
    def hub(self) -> StreamHub:
        hub: StreamHub = self.gateway.state.runtime.extras["streams"]
        return hub


@pytest.fixture(scope="module")
async def stack(
    scheduler_settings: SchedulerSettings, postgres: EmbeddedPostgres, own_nats: EmbeddedNats
) -> AsyncIterator[Stack]:
    gateway = create_gateway(
        GatewaySettings(database_url=postgres.url, nats_url=own_nats.url, port=0)
    )
    engine = create_async_engine(postgres.url)
    async with running(create_scheduler(scheduler_settings)), served(gateway, lifespan=True) as url:
        await asyncio.wait_for(gateway.state.runtime.started.wait(), 30)
        bus = Bus(own_nats.url, "stream-tests", timedelta(seconds=5))
        await bus.connect()
        stack = Stack(bus, gateway, url, engine)
        stack.key = base64.b64decode((await bus.request(GET_STREAM_KEY, Empty())).key)
        yield stack
        await bus.close()
    await engine.dispose()


@dataclass
class Running:
    """A streaming prediction "running" on a made-up instance."""

    stack: Stack
    record: p.PredictionRecord
    instance_id: str
    seq: int = 0

    @property
    def url(self) -> str:
        token = stream_token(self.stack.key, self.record.id)
        return f"{self.stack.url}/v1/predictions/{self.record.id}/stream?token={token}"

    async def report(self, status: str, output: Any = None, logs: str = "", **extra: Any) -> None:
        event = p.PredictionUpdated(
            prediction_id=self.record.id,
            instance_id=self.instance_id,
            seq=self.seq,
            status=status,
            output=output,
            logs=logs,
            **extra,
        )
        self.seq += 1
        await self.stack.bus.publish(event)


async def start(stack: Stack) -> Running:
    version = p.VersionSpec(
        version_id=uuid.uuid4().hex * 2,
        owner="alice",
        name="llm",
        predict="predict.py:Predictor",
        env_key="e" * 64,
        python_version="3.11",
        cog_version="0.13.7",
        source_object="s",
        source_digest="d" * 64,
        openapi_schema={},
    )
    viewer = Viewer(account_id=new_id(), username="alice")
    submit = p.SubmitPrediction(viewer=viewer, version=version, input={}, streaming=True)
    record = await stack.bus.request(p.SUBMIT_PREDICTION, submit)
    instance_id = new_id()
    async with stack.engine.begin() as conn:
        await conn.execute(
            text("UPDATE scheduler.predictions SET instance_id = :i WHERE id = :p"),
            {"i": instance_id, "p": record.id},
        )
    return Running(stack, record, instance_id)


def parse(body: str) -> list[tuple[str, str, str]]:
    """(event, id, data) of every event of a whole stream; fails on anything a client rejects."""
    events = []
    for block in body.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        fields: dict[str, list[str]] = {}
        for line in lines:
            name, _, value = line.partition(": ")
            fields.setdefault(name, []).append(value)
        assert set(fields) <= {"event", "id", "data"}, block
        (event,), (event_id,) = fields["event"], fields["id"]
        assert event in EVENT_NAMES, block
        assert event_id, block
        events.append((event, event_id, "\n".join(fields.get("data", []))))
    return events


async def holds(condition: Callable[[], bool]) -> None:
    async def probe() -> bool:
        return condition()

    await eventually(probe, timeout=10)


class Reader:
    """Reads a stream with the Python client's own decoder, in the background."""

    def __init__(self, response: httpx.Response) -> None:
        client = Client(api_token="unused", base_url="http://unused")
        self.source = EventSource(client, response)
        self.events: list[ServerSentEvent] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.source:
            self.events.append(event)

    async def until(self, count: int) -> list[ServerSentEvent]:
        async def probe() -> list[ServerSentEvent] | None:
            if self.task.done():
                self.task.result()
            return list(self.events) if len(self.events) >= count else None

        return await eventually(probe, timeout=10)


async def test_a_stream_from_start_to_finish_then_resumed(stack: Stack) -> None:
    run = await start(stack)
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("GET", run.url, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = Reader(response)
        await run.report("processing", logs="booting\n")
        await reader.until(1)
        await run.report("processing", output=["Hello"], logs="booting\n")
        await reader.until(2)
        await run.report("processing", output=["Hello", " world", "!\nbye"], logs="booting\n")
        await reader.until(4)
        final = ["Hello", " world", "!\nbye"]
        await run.report("succeeded", output=final, logs="booting\ndone\n")
        await reader.until(6)
        await asyncio.wait_for(reader.task, 5)  # the client stops at done
    seen = [(e.event.value, e.id, str(e.data)) for e in reader.events]
    assert seen == [
        ("logs", "0:8", "booting\n"),
        ("output", "1:8", "Hello"),
        ("output", "2:8", " world"),
        ("output", "3:8", "!\nbye"),
        ("logs", "3:13", "done\n"),
        ("done", "3:13", "{}"),
    ]
    async with httpx.AsyncClient(timeout=10) as http:
        resumed = await http.get(run.url, headers={"Last-Event-ID": "1:8"})
    assert parse(resumed.text) == [
        ("logs", "1:13", "done\n"),
        ("output", "2:13", " world"),
        ("output", "3:13", "!\nbye"),
        ("done", "3:13", "{}"),
    ]
    assert len(stack.hub) == 0  # every listener was let go


async def test_the_url_works_with_and_without_authorization(stack: Stack) -> None:
    run = await start(stack)
    await run.report("succeeded", output=["a", "b"], logs="")
    async with httpx.AsyncClient(timeout=10) as http:
        bare = await http.get(run.url)  # as Node's client asks
        authorized = await http.get(run.url, headers={"Authorization": "Bearer r8_whatever"})
    assert bare.status_code == authorized.status_code == 200
    assert parse(bare.text) == parse(authorized.text)
    assert [event for event, _, _ in parse(bare.text)] == ["output", "output", "done"]


async def test_a_wrong_token_is_a_404(stack: Stack) -> None:
    run = await start(stack)
    other = await start(stack)
    wrong = stream_token(stack.key, other.record.id)
    base = f"{stack.url}/v1/predictions/{run.record.id}/stream"
    async with httpx.AsyncClient(timeout=10) as http:
        for url in (base, f"{base}?token=", f"{base}?token={wrong}", f"{base}?token=x"):
            response = await http.get(url)
            assert response.status_code == 404, url
            assert response.headers["content-type"] == "application/problem+json"
        unknown = await http.get(
            f"{stack.url}/v1/predictions/nope/stream?token={stream_token(stack.key, 'nope')}"
        )
        assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("status", "tail"),
    [
        ("failed", [("error", '{"detail": "out of memory"}'), ("done", '{"reason": "error"}')]),
        ("canceled", [("done", '{"reason": "canceled"}')]),
    ],
)
async def test_failures_and_cancellations_end_the_stream(
    stack: Stack, status: str, tail: list[tuple[str, str]]
) -> None:
    run = await start(stack)
    async with httpx.AsyncClient(timeout=10) as http:
        pending = asyncio.create_task(http.get(run.url))
        await holds(lambda: len(stack.hub) > 0)
        error = "out of memory" if status == "failed" else None
        await run.report(status, output=["partial"], error=error)
        response = await asyncio.wait_for(pending, 10)
    events = parse(response.text)
    assert [(e, d) for e, _, d in events] == [("output", "partial"), *tail]


async def test_the_python_client_raises_the_error_event(stack: Stack) -> None:
    run = await start(stack)
    await run.report("failed", error="out of memory")
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("GET", run.url) as response,
    ):
        source = EventSource(Client(api_token="x", base_url="http://x"), response)
        with pytest.raises(RuntimeError, match="out of memory"):
            async for _ in source:
                pass


async def test_keepalives_and_a_missed_notice(stack: Stack) -> None:
    stack.hub.keepalive = 0.2
    try:
        run = await start(stack)
        chunks: list[str] = []
        async with (
            httpx.AsyncClient(timeout=10) as http,
            http.stream("GET", run.url) as response,
        ):

            async def read() -> None:
                async for chunk in response.aiter_text():
                    chunks.append(chunk)

            reader = asyncio.create_task(read())
            await holds(lambda: ": ping\n\n" in "".join(chunks))
            # A change nobody announced (as if the notice were lost) is still picked up.
            async with stack.engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE scheduler.predictions SET status = 'succeeded', "
                        "output = '[\"late\"]', completed_at = now() WHERE id = :p"
                    ),
                    {"p": run.record.id},
                )
            await asyncio.wait_for(reader, 5)
        events = parse("".join(chunks))
        assert [(e, d) for e, _, d in events] == [("output", "late"), ("done", "{}")]
        assert json.loads(events[-1][2]) == {}
    finally:
        stack.hub.keepalive = 10.0
