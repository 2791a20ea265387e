"""The bus against a real NATS server with JetStream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from nats.js.api import DeliverPolicy

from cogplane.common.bus import Bus, PermanentFailure
from cogplane.common.contracts.accounts import Caller, VerifyToken
from cogplane.common.contracts.base import DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM, Rpc, new_id
from cogplane.common.contracts.events import parse_event
from cogplane.common.contracts.runners import RunnerHeartbeat
from cogplane.common.db import utcnow
from cogplane.common.embedded import EmbeddedNats
from cogplane.common.errors import CogplaneError, NotFound, Unavailable
from cogplane.common.retry import RetryPolicy
from cogplane.common.testing.wait import eventually

# A call of these tests' own, so that no service running in the same session answers it.
VERIFY_TOKEN = Rpc(f"test.{new_id()}.verify", VerifyToken, Caller)


@pytest.fixture
async def bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    bus = Bus(nats_server.url, f"test-{new_id()[:8]}", timedelta(seconds=1))
    await bus.connect()
    yield bus
    await bus.close()


def heartbeat(node: str) -> RunnerHeartbeat:
    return RunnerHeartbeat(node_id=node, hostname="h", started_at=utcnow(), capacity=[])


def subject_of(node: str) -> str:
    return "cogplane.events.runners.>"


async def test_duplicate_publish_is_delivered_once(bus: Bus) -> None:
    node = new_id()
    received: list[str] = []

    async def handler(data: bytes, _: dict[str, str]) -> None:
        event = parse_event(data)
        if getattr(event, "node_id", None) == node:
            received.append(event.id)

    await bus.consume(f"dedupe-{node[:8]}", "cogplane.events.runners.>", handler, deliver_new=True)
    event = heartbeat(node)
    await bus.publish(event)
    await bus.publish(event)
    await bus.publish(heartbeat(node))
    await eventually(lambda: asyncio.sleep(0, len(received) >= 2))
    await asyncio.sleep(0.3)
    assert len(received) == 2
    assert received[0] == event.id


async def test_failing_handler_is_redelivered_then_acked(bus: Bus) -> None:
    node = new_id()
    attempts: list[int] = []

    async def handler(data: bytes, _: dict[str, str]) -> None:
        if parse_event(data).node_id != node:  # type: ignore[union-attr]
            return
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("transient")

    await bus.consume(
        f"retry-{node[:8]}",
        "cogplane.events.runners.>",
        handler,
        deliver_new=True,
        retry=RetryPolicy(initial=0.05, maximum=0.1),
    )
    await bus.publish(heartbeat(node))
    await eventually(lambda: asyncio.sleep(0, len(attempts) >= 3))
    await asyncio.sleep(0.5)
    assert len(attempts) == 3


async def _dead_letters(bus: Bus, durable: str) -> list[bytes]:
    sub = await bus.js.subscribe(
        f"{DEAD_LETTER_PREFIX}.{durable}",
        stream=DEAD_LETTER_STREAM,
        deliver_policy=DeliverPolicy.ALL,
    )
    found = []
    with contextlib.suppress(Exception):  # the read times out once no message is left
        while True:
            msg = await sub.next_msg(timeout=0.5)
            found.append(msg.data)
    await sub.unsubscribe()
    return found


async def test_permanent_failure_goes_to_dead_letters(bus: Bus) -> None:
    node = new_id()
    durable = f"dlq-{node[:8]}"

    async def handler(data: bytes, _: dict[str, str]) -> None:
        if parse_event(data).node_id == node:  # type: ignore[union-attr]
            raise PermanentFailure("cannot ever work")

    await bus.consume(durable, "cogplane.events.runners.>", handler, deliver_new=True)
    event = heartbeat(node)
    await bus.publish(event)
    letters = await eventually(lambda: _dead_letters(bus, durable))
    assert parse_event(letters[0]).id == event.id


async def test_exhausted_redeliveries_go_to_dead_letters(bus: Bus) -> None:
    node = new_id()
    durable = f"max-{node[:8]}"
    attempts: list[int] = []

    async def handler(data: bytes, _: dict[str, str]) -> None:
        if parse_event(data).node_id == node:  # type: ignore[union-attr]
            attempts.append(1)
            raise RuntimeError("always")

    await bus.consume(
        durable,
        "cogplane.events.runners.>",
        handler,
        deliver_new=True,
        max_deliver=3,
        retry=RetryPolicy(initial=0.05, maximum=0.05),
    )
    await bus.publish(heartbeat(node))
    letters = await eventually(lambda: _dead_letters(bus, durable))
    assert len(letters) == 1
    assert len(attempts) == 3


async def test_request_reply_returns_typed_results_and_problems(bus: Bus) -> None:
    async def verify(request: VerifyToken) -> Caller:
        raise NotFound(f"no {request.token}")

    await bus.serve(VERIFY_TOKEN, verify)
    with pytest.raises(CogplaneError) as caught:
        await bus.request(VERIFY_TOKEN, VerifyToken(token="abc"))
    assert caught.value.status == 404
    assert caught.value.detail == "no abc"


async def test_request_without_responder_is_unavailable(nats_server: EmbeddedNats) -> None:
    lonely = Bus(nats_server.url, "lonely", timedelta(seconds=1))
    await lonely.connect()
    try:
        with pytest.raises(Unavailable):
            await lonely.request(VERIFY_TOKEN, VerifyToken(token="x"))
    finally:
        await lonely.close()


async def test_slow_responder_times_out(bus: Bus) -> None:
    async def slow(_: VerifyToken) -> Caller:
        await asyncio.sleep(5)
        raise AssertionError("unreachable")

    await bus.serve(VERIFY_TOKEN, slow)
    with pytest.raises(Unavailable, match="did not answer in time"):
        await bus.request(VERIFY_TOKEN, VerifyToken(token="x"), timeout=0.3)
    await bus.stop_intake()
    await bus.wait_idle(0.1)


async def test_stop_intake_lets_inflight_work_finish(bus: Bus, nats_server: EmbeddedNats) -> None:
    finished: list[str] = []

    async def slow(request: VerifyToken) -> Caller:
        await asyncio.sleep(0.5)
        finished.append(request.token)
        raise NotFound("done")

    await bus.serve(VERIFY_TOKEN, slow)
    caller = Bus(nats_server.url, "caller", timedelta(seconds=3))
    await caller.connect()
    try:
        pending = asyncio.create_task(caller.request(VERIFY_TOKEN, VerifyToken(token="inflight")))
        await eventually(lambda: asyncio.sleep(0, bus.inflight == 1))
        await bus.stop_intake()
        await bus.wait_idle(5)
        with pytest.raises(NotFound):
            await pending
        assert finished == ["inflight"]
        with pytest.raises(Unavailable):
            await caller.request(VERIFY_TOKEN, VerifyToken(token="after"), timeout=0.5)
    finally:
        await caller.close()
