"""The scheduler's webhook and stream calls, and the durable delivery of completed webhooks."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta

import httpx

from cogplane.common.contracts.base import Empty
from cogplane.common.contracts.predictions import PredictionRecord
from cogplane.common.contracts.webhooks import (
    GET_STREAM_KEY,
    GET_STREAMED_PREDICTION,
    GET_WEBHOOK_SECRET,
    StreamKey,
    StreamRef,
    WebhookDue,
    WebhookSecret,
    WebhookSecretRequest,
)
from cogplane.common.errors import NotFound
from cogplane.common.predictions_json import stream_token_valid
from cogplane.common.retry import RetryPolicy
from cogplane.common.service import Runtime
from cogplane.scheduler.config import SchedulerSettings
from cogplane.scheduler.webhooks.delivery import Sender
from cogplane.scheduler.webhooks.dispatcher import Dispatcher
from cogplane.scheduler.webhooks.keys import Keys
from cogplane.scheduler.work.repository import WorkRepository
from cogplane.scheduler.work.service import to_record

DUE_EVENTS = f"cogplane.events.{WebhookDue.subject_suffix}"
DUE_CONSUMER = "scheduler-webhooks"
RPCS = (GET_WEBHOOK_SECRET, GET_STREAM_KEY, GET_STREAMED_PREDICTION)
USER_AGENT = "cogplane-webhooks/0.1"


class Webhooks:
    """The calls and the delivery consumer around ``Keys`` and ``Sender``."""

    def __init__(self, rt: Runtime, keys: Keys, sender: Sender) -> None:
        self.rt = rt
        self.db = rt.require_db()
        self.keys = keys
        self.sender = sender

    async def secret(self, req: WebhookSecretRequest) -> WebhookSecret:
        return WebhookSecret(key=await self.keys.webhook_secret(req.viewer.account_id))

    async def stream_key(self, _: Empty) -> StreamKey:
        return StreamKey(key=base64.b64encode(self.keys.stream_key).decode())

    async def streamed(self, req: StreamRef) -> PredictionRecord:
        """The prediction a stream URL names (the token is checked here too)."""
        if stream_token_valid(self.keys.stream_key, req.prediction_id, req.token):
            async with self.db.unit_of_work() as session:
                row = await WorkRepository(session).prediction(req.prediction_id)
            if row is not None:
                return to_record(row)
        raise NotFound(f"Prediction {req.prediction_id} not found")

    async def publish_due(self, prediction_id: str) -> None:
        await self.rt.bus.publish(WebhookDue.of(prediction_id))

    async def deliver_due(self, data: bytes, _: dict[str, str]) -> None:
        """One attempt at a completed webhook; raising has it retried later, with backoff."""
        due = WebhookDue.model_validate_json(data)
        async with self.db.unit_of_work() as session:
            row = await WorkRepository(session).prediction(due.prediction_id)
        if row is not None and row.webhook is not None:
            await self.sender.send(to_record(row), due.id)  # DeliveryFailed: retried, then dead


async def register(rt: Runtime) -> None:
    """Serve the secret and stream calls; deliver webhooks (before ``work`` announces changes)."""
    settings = rt.settings
    assert isinstance(settings, SchedulerSettings)
    keys = Keys(rt.require_db())
    await keys.load()
    client = httpx.AsyncClient(
        follow_redirects=False,
        timeout=settings.webhook_timeout.total_seconds(),
        headers={"user-agent": USER_AGENT},
    )
    webhooks = Webhooks(rt, keys, Sender(client, keys, settings.public_url))
    throttle = settings.webhook_throttle.total_seconds()
    dispatcher = Dispatcher(webhooks.sender.send, webhooks.publish_due, throttle)
    rt.extras["webhooks"] = dispatcher
    rt.spawn(_close_when_stopped(dispatcher, client, settings), "webhook sends")
    await rt.bus.serve(GET_WEBHOOK_SECRET, webhooks.secret)
    await rt.bus.serve(GET_STREAM_KEY, webhooks.stream_key)
    await rt.bus.serve(GET_STREAMED_PREDICTION, webhooks.streamed)
    retry = RetryPolicy(initial=settings.webhook_retry_initial.total_seconds(), maximum=30.0)
    ack_wait = max(timedelta(seconds=30), settings.webhook_timeout * 3)
    for _ in range(settings.webhook_concurrency):  # several pullers of one durable consumer,
        await rt.bus.consume(  # so that a slow receiver does not hold up the others
            DUE_CONSUMER,
            DUE_EVENTS,
            webhooks.deliver_due,
            max_deliver=settings.webhook_attempts,
            ack_wait=ack_wait,
            retry=retry,
            batch=1,
        )


async def _close_when_stopped(
    dispatcher: Dispatcher, client: httpx.AsyncClient, settings: SchedulerSettings
) -> None:
    """Hold the HTTP client until the service's background work is cancelled (after the drain)."""
    try:
        await asyncio.Event().wait()
    finally:
        await dispatcher.stop(settings.webhook_timeout.total_seconds())
        await client.aclose()
