"""Webhooks delivered by a running scheduler to a real HTTP receiver.

Runner reports are simulated: a prediction is admitted through the scheduler's call, tied to a
made-up instance in the database (as dispatch would), and ``PredictionUpdated`` events are
published the way a runner publishes them. The scheduler has a NATS server of its own, so that
no other scheduler in the test session takes part.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from replicate.webhook import Webhooks, WebhookSigningSecret
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

import cogplane.scheduler
from cogplane.common.bus import Bus
from cogplane.common.contracts import predictions as p
from cogplane.common.contracts.base import Empty, new_id
from cogplane.common.contracts.models import Viewer
from cogplane.common.contracts.webhooks import (
    GET_STREAM_KEY,
    GET_STREAMED_PREDICTION,
    GET_WEBHOOK_SECRET,
    StreamRef,
    WebhookSecretRequest,
)
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from cogplane.common.errors import NotFound
from cogplane.common.predictions_json import render_prediction, stream_token
from cogplane.common.retry import RetryPolicy
from cogplane.common.testing.apps import running
from cogplane.common.testing.fixtures import migrate_service
from cogplane.common.testing.served import served
from cogplane.common.testing.wait import eventually
from cogplane.scheduler.app import create_app
from cogplane.scheduler.config import SchedulerSettings
from cogplane.scheduler.models import SCHEMA

PUBLIC = "https://cogplane.example"
ATTEMPTS = 3


@dataclass
class Call:
    at: float
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.body)
        return body


class Receiver:
    """A webhook endpoint that records every request; it fails as often as it is told to."""

    def __init__(self) -> None:
        self.calls: defaultdict[str, list[Call]] = defaultdict(list)
        self.failures: dict[str, int] = {}
        self.url = ""
        self.app = Starlette(
            routes=[
                Route("/hook/{name}", self.hook, methods=["POST"]),
                Route("/redirect/{name}", self.redirect, methods=["POST"]),
            ]
        )

    async def _record(self, request: Request) -> str:
        name = request.path_params["name"]
        call = Call(time.monotonic(), dict(request.headers), await request.body())
        self.calls[name].append(call)
        return str(name)

    async def hook(self, request: Request) -> Response:
        name = await self._record(request)
        if self.failures.get(name, 0) > 0:
            self.failures[name] -= 1
            return Response("try again", status_code=500)
        return Response(status_code=204)

    async def redirect(self, request: Request) -> Response:
        name = await self._record(request)
        return RedirectResponse(f"{self.url}/hook/{name}-moved", status_code=302)

    def new(self, kind: str = "hook") -> tuple[str, str]:
        name = uuid.uuid4().hex[:12]
        return name, f"{self.url}/{kind}/{name}"

    async def received(self, name: str, count: int, timeout: float = 10) -> list[Call]:
        async def probe() -> list[Call] | None:
            calls = self.calls[name]
            return list(calls) if len(calls) >= count else None

        return await eventually(probe, timeout=timeout)


def test_the_last_retry_is_about_a_minute_after_completion() -> None:
    """Replicate: "The final retry is sent about 1 minute after the prediction completed"."""
    defaults = SchedulerSettings()
    policy = RetryPolicy(
        initial=defaults.webhook_retry_initial.total_seconds(), maximum=30.0, jitter=0.0
    )
    pauses = [policy.delay(n) for n in range(1, defaults.webhook_attempts)]
    assert sum(pauses) == pytest.approx(60, abs=5)


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(Path(tmp_path_factory.mktemp("webhook-nats")) / "nats", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def settings(
    postgres: EmbeddedPostgres, migrated_schemas: set[str], own_nats: EmbeddedNats
) -> SchedulerSettings:
    migrate_service(postgres, migrated_schemas, cogplane.scheduler.__file__, SCHEMA)
    return SchedulerSettings(
        database_url=postgres.url,
        nats_url=own_nats.url,
        port=0,
        public_url=PUBLIC + "/",
        webhook_attempts=ATTEMPTS,
        webhook_retry_initial=timedelta(milliseconds=50),
        webhook_timeout=timedelta(seconds=2),
    )


@pytest.fixture(scope="module")
async def scheduler(settings: SchedulerSettings) -> AsyncIterator[None]:
    async with running(create_app(settings)):
        yield


@pytest.fixture(scope="module")
async def bus(own_nats: EmbeddedNats, scheduler: None) -> AsyncIterator[Bus]:
    client = Bus(own_nats.url, "webhook-tests", timedelta(seconds=5))
    await client.connect()
    yield client
    await client.close()


@pytest.fixture(scope="module")
async def engine(postgres: EmbeddedPostgres) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(postgres.url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    hooks = Receiver()
    async with served(hooks.app) as url:
        hooks.url = url
        yield hooks


@dataclass
class Prediction:
    """A prediction admitted by the scheduler and "running" on a made-up instance."""

    bus: Bus
    record: p.PredictionRecord
    viewer: Viewer
    instance_id: str
    seq: int = 0

    async def report(self, status: str, output: Any = None, logs: str = "", **extra: Any) -> None:
        await self.bus.publish(
            p.PredictionUpdated(
                prediction_id=self.record.id,
                instance_id=self.instance_id,
                seq=self.seq,
                status=status,
                output=output,
                logs=logs,
                **extra,
            )
        )
        self.seq += 1

    async def secret(self) -> WebhookSigningSecret:
        reply = await self.bus.request(GET_WEBHOOK_SECRET, WebhookSecretRequest(viewer=self.viewer))
        return WebhookSigningSecret(key=reply.key)

    async def current(self) -> p.PredictionRecord:
        ref = p.PredictionRef(viewer=self.viewer, prediction_id=self.record.id)
        return await self.bus.request(p.GET_PREDICTION, ref)


def version_spec() -> p.VersionSpec:
    return p.VersionSpec(
        version_id=uuid.uuid4().hex * 2,
        owner="alice",
        name="echo",
        predict="predict.py:Predictor",
        env_key="e" * 64,
        python_version="3.11",
        cog_version="0.13.7",
        source_object="s",
        source_digest="d" * 64,
        openapi_schema={},
    )


@pytest.fixture
def admit(bus: Bus, engine: AsyncEngine) -> Any:
    async def make(webhook: str, events: list[str], *, streaming: bool = False) -> Prediction:
        viewer = Viewer(account_id=new_id(), username="alice")
        submit = p.SubmitPrediction(
            viewer=viewer,
            version=version_spec(),
            input={"text": "hi"},
            webhook=webhook,
            webhook_events_filter=events,
            streaming=streaming,
        )
        record = await bus.request(p.SUBMIT_PREDICTION, submit)
        instance_id = new_id()
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE scheduler.predictions SET instance_id = :i WHERE id = :p"),
                {"i": instance_id, "p": record.id},
            )
        return Prediction(bus, record, viewer, instance_id)

    return make


def valid(call: Call, secret: WebhookSigningSecret) -> bool:
    Webhooks.validate(headers=call.headers, body=call.body.decode(), secret=secret)
    return True


async def test_default_filter_sends_new_outputs_and_completion(
    admit: Any, receiver: Receiver, bus: Bus
) -> None:
    name, url = receiver.new()
    prediction = await admit(url, [], streaming=True)
    await prediction.report("processing", logs="loading\n")
    await prediction.report("processing", output=["x"], logs="loading\n")
    await receiver.received(name, 1)
    await prediction.report("succeeded", output=["x", "y"], logs="loading\ndone\n")
    first, done = await receiver.received(name, 2)
    await asyncio.sleep(0.3)
    assert len(receiver.calls[name]) == 2  # logs alone are not asked for by default
    assert first.json["status"] == "processing"
    assert first.json["output"] == ["x"]
    assert done.json["status"] == "succeeded"
    assert done.json["output"] == ["x", "y"]
    secret = await prediction.secret()
    assert valid(first, secret)
    assert valid(done, secret)
    assert first.headers["webhook-id"] != done.headers["webhook-id"]
    assert done.headers["content-type"] == "application/json"
    # The body is the prediction exactly as GET /v1/predictions/{id} shows it.
    key = (await bus.request(GET_STREAM_KEY, Empty())).key
    expected = render_prediction(
        await prediction.current(), PUBLIC, stream_key=base64.b64decode(key)
    )
    assert done.json == expected
    assert done.json["urls"]["get"] == f"{PUBLIC}/v1/predictions/{prediction.record.id}"
    assert done.json["urls"]["stream"].startswith(f"{PUBLIC}/v1/predictions/")


async def test_every_event_in_order(admit: Any, receiver: Receiver) -> None:
    name, url = receiver.new()
    prediction = await admit(url, ["start", "output", "logs", "completed"])
    (start,) = await receiver.received(name, 1)
    assert start.json["status"] == "starting"  # sent at once, before anything ran
    await prediction.report("processing", logs="a\n")
    await receiver.received(name, 2)
    await prediction.report("processing", output=["o"], logs="a\n")
    await prediction.report("failed", output=["o"], logs="a\n", error="boom")
    calls = await receiver.received(name, 3)
    await asyncio.sleep(0.7)  # a deferred output webhook would have gone out by now
    calls = receiver.calls[name]
    statuses = [c.json["status"] for c in calls]
    assert statuses[0] == "starting"
    assert statuses[1] == "processing"
    assert statuses[-1] == "failed"
    assert calls[-1].json["error"] == "boom"
    assert "failed" not in statuses[:-1]
    assert len(calls) in (3, 4)
    assert len({c.headers["webhook-id"] for c in calls}) == len(calls)


async def test_output_webhooks_are_throttled_and_coalesced(admit: Any, receiver: Receiver) -> None:
    name, url = receiver.new()
    prediction = await admit(url, ["output", "completed"])
    for n in range(1, 7):
        await prediction.report("processing", output=list(range(n)))
    await receiver.received(name, 2)
    await asyncio.sleep(1.2)
    calls = list(receiver.calls[name])
    assert calls[0].json["output"] == [0]
    assert calls[-1].json["output"] == [0, 1, 2, 3, 4, 5]  # the latest change was not lost
    assert len(calls) < 6
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    assert all(gap > 0.4 for gap in gaps), gaps
    await prediction.report("succeeded", output=list(range(6)))
    calls = await receiver.received(name, len(calls) + 1)
    assert calls[-1].json["status"] == "succeeded"


async def test_completed_webhook_is_retried_until_it_succeeds(
    admit: Any, receiver: Receiver
) -> None:
    name, url = receiver.new()
    receiver.failures[name] = 2
    prediction = await admit(url, ["completed"])
    await prediction.report("processing", output=["a"], logs="x")
    await prediction.report("succeeded", output=["a"], logs="x")
    calls = await receiver.received(name, 3)
    await asyncio.sleep(0.5)
    assert len(receiver.calls[name]) == 3  # the third answer was a success
    assert {c.headers["webhook-id"] for c in calls} == {f"msg_{prediction.record.id}_completed"}
    secret = await prediction.secret()
    assert all(valid(c, secret) for c in calls)
    assert all(c.json["status"] == "succeeded" for c in calls)


async def test_intermediate_webhooks_are_not_retried(admit: Any, receiver: Receiver) -> None:
    name, url = receiver.new()
    receiver.failures[name] = 100
    prediction = await admit(url, ["start", "completed"])
    await receiver.received(name, 1)
    await prediction.report("canceled")
    calls = await receiver.received(name, 1 + ATTEMPTS)
    await asyncio.sleep(0.5)
    assert len(receiver.calls[name]) == 1 + ATTEMPTS  # then it gives up
    assert [c.json["status"] for c in calls] == ["starting"] + ["canceled"] * ATTEMPTS


async def test_redirects_are_not_followed(admit: Any, receiver: Receiver) -> None:
    name, url = receiver.new("redirect")
    prediction = await admit(url, ["completed"])
    await prediction.report("succeeded", output="x")
    await receiver.received(name, ATTEMPTS)  # a 3xx is a failure, retried like one
    await asyncio.sleep(0.5)
    assert len(receiver.calls[name]) == ATTEMPTS
    assert receiver.calls[f"{name}-moved"] == []


async def test_each_account_has_one_lasting_secret(bus: Bus) -> None:
    alice = WebhookSecretRequest(viewer=Viewer(account_id=new_id(), username="alice"))
    bob = WebhookSecretRequest(viewer=Viewer(account_id=new_id(), username="bob"))
    first = await bus.request(GET_WEBHOOK_SECRET, alice)
    assert first.key.startswith("whsec_")
    assert len(first.key.split("_")) == 2
    assert (await bus.request(GET_WEBHOOK_SECRET, alice)).key == first.key
    assert (await bus.request(GET_WEBHOOK_SECRET, bob)).key != first.key


async def test_stream_reference_needs_the_right_token(admit: Any, bus: Bus) -> None:
    prediction = await admit("https://unused.example/hook", ["completed"], streaming=True)
    key = base64.b64decode((await bus.request(GET_STREAM_KEY, Empty())).key)
    good = StreamRef(
        prediction_id=prediction.record.id, token=stream_token(key, prediction.record.id)
    )
    assert (await bus.request(GET_STREAMED_PREDICTION, good)).id == prediction.record.id
    for token in ("", "x" * 43, stream_token(key, "other")):
        with pytest.raises(NotFound):
            await bus.request(GET_STREAMED_PREDICTION, good.model_copy(update={"token": token}))
