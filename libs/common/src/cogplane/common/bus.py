"""NATS and JetStream behind one small, typed interface.

Events go to JetStream with ``Nats-Msg-Id`` set to the event id, so a duplicate publish inside
the stream's window is dropped. Consumers are durable pull consumers with explicit ack; a failing
handler is redelivered with backoff and, after ``max_deliver`` attempts (or at once when the
message cannot be parsed), moved to a dead-letter subject. Request-reply calls carry a typed
request and a typed reply or a problem, with a timeout. Every hop carries W3C trace context.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, BinaryIO, TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    ObjectStoreConfig,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, ObjectNotFoundError
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import ValidationError

from cogplane.common.contracts.base import (
    BROADCAST_PREFIX,
    DEAD_LETTER_PREFIX,
    DEAD_LETTER_STREAM,
    EVENTS_PREFIX,
    EVENTS_STREAM,
    FILES_BUCKET,
    OUTPUTS_BUCKET,
    SOURCES_BUCKET,
    Broadcast,
    Event,
    Req,
    Resp,
    Rpc,
    RpcReply,
)
from cogplane.common.errors import CogplaneError, InvalidInput, NotFound, Unavailable
from cogplane.common.retry import RetryPolicy
from cogplane.common.telemetry import extract_context, inject_headers

logger = logging.getLogger(__name__)
REDELIVERY = RetryPolicy(initial=0.5, maximum=30.0)
_tracer = trace.get_tracer("cogplane.bus")

B = TypeVar("B", bound=Broadcast)
E = TypeVar("E", bound=Event)
EventHandler = Callable[[bytes, dict[str, str]], Awaitable[None]]


@dataclass(frozen=True)
class _Consumer:
    durable: str
    handler: EventHandler
    max_deliver: int
    retry: RetryPolicy
    progress_every: float | None


class PermanentFailure(Exception):
    """Raised by a handler for a message that can never succeed: it goes to the dead letters."""


class Bus:
    """A service's connection to NATS.

    Args:
        url: NATS server URL.
        name: Connection name (the service), also the queue group of its request handlers.
        request_timeout: Default timeout of ``request``.
    """

    def __init__(self, url: str, name: str, request_timeout: timedelta) -> None:
        self.url = url
        self.name = name
        self.request_timeout = request_timeout.total_seconds()
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._subscriptions: list[Any] = []
        self._loops: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._accepting = True
        self._closing = False
        self._lost_callbacks: list[Callable[[], None]] = []
        self.last_error: str | None = None

    # -- connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect once (raises when the server cannot be reached) and ensure the streams.

        The first connection fails fast so that the caller can say what it waits for; once
        connected, the client reconnects by itself forever.
        """
        try:
            nc = await nats.connect(
                self.url,
                name=self.name,
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.2,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
        except Exception as exc:
            raise Unavailable(f"cannot reach NATS at {self.url}: {self.last_error or exc}") from exc
        nc.options["max_reconnect_attempts"] = -1
        self._nc = nc
        self._js = nc.jetstream()
        await self.ensure_streams()
        self.last_error = None

    async def ensure_streams(self) -> None:
        """Create (or update) the event and dead-letter streams and the object stores."""
        for config in (
            StreamConfig(
                name=EVENTS_STREAM,
                subjects=[f"{EVENTS_PREFIX}.>"],
                storage=StorageType.FILE,
                duplicate_window=120.0,
                max_age=7 * 24 * 3600.0,
            ),
            StreamConfig(
                name=DEAD_LETTER_STREAM,
                subjects=[f"{DEAD_LETTER_PREFIX}.>"],
                storage=StorageType.FILE,
                max_age=30 * 24 * 3600.0,
            ),
        ):
            try:
                await self.js.add_stream(config)
            except BadRequestError:
                await self.js.update_stream(config)
        await self.js.create_object_store(
            SOURCES_BUCKET,
            config=ObjectStoreConfig(
                bucket=SOURCES_BUCKET,
                description="Pushed Cog projects, by the sha256 of their archive",
                storage=StorageType.FILE,
            ),
        )
        await self.js.create_object_store(
            FILES_BUCKET,
            config=ObjectStoreConfig(
                bucket=FILES_BUCKET,
                description="Files uploaded through /v1/files, by file id",
                storage=StorageType.FILE,
            ),
        )
        await self.js.create_object_store(
            OUTPUTS_BUCKET,
            config=ObjectStoreConfig(
                bucket=OUTPUTS_BUCKET,
                description="Output files of predictions, as prediction_id/token/filename",
                storage=StorageType.FILE,
            ),
        )

    @property
    def nc(self) -> NatsClient:
        """The NATS client (raises before ``connect``)."""
        if self._nc is None:
            raise Unavailable("Not connected to NATS yet")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        """The JetStream context (raises before ``connect``)."""
        if self._js is None:
            raise Unavailable("Not connected to NATS yet")
        return self._js

    @property
    def connected(self) -> bool:
        """Whether the connection is up right now."""
        return self._nc is not None and self._nc.is_connected

    async def _on_error(self, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}".strip()

    def on_connection_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever the connection drops (broadcasts may be missed from then)."""
        self._lost_callbacks.append(callback)

    async def _on_disconnected(self) -> None:
        for callback in self._lost_callbacks:
            callback()
        if self._closing:
            return
        logger.warning("disconnected from NATS at %s; reconnecting", self.url)

    async def _on_reconnected(self) -> None:
        logger.info("reconnected to NATS at %s", self.url)
        self.last_error = None

    # -- events -------------------------------------------------------------------------------

    async def publish(self, event: Event) -> None:
        """Publish ``event`` durably; a duplicate id within two minutes is dropped by JetStream."""
        with _tracer.start_as_current_span(f"publish {event.type}", kind=SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", event.subject)
            span.set_attribute("messaging.message.id", event.id)
            headers = inject_headers({"Nats-Msg-Id": event.id, "Cogplane-Type": event.type})
            await self.js.publish(event.subject, event.model_dump_json().encode(), headers=headers)

    async def consume(
        self,
        durable: str,
        subject: str | Sequence[str],
        handler: EventHandler,
        *,
        max_deliver: int = 8,
        ack_wait: timedelta = timedelta(seconds=30),
        batch: int = 64,
        retry: RetryPolicy = REDELIVERY,
        deliver_new: bool = False,
        progress_every: timedelta | None = None,
    ) -> None:
        """Run a durable pull consumer on ``subject`` until ``stop_intake``.

        ``handler`` receives the raw message body and headers; it raises to have the message
        redelivered later, or ``PermanentFailure`` to dead-letter it. For long handlers, set
        ``progress_every`` (well under ``ack_wait``): while the handler runs the server is told
        the message is still in progress, so it is not redelivered to someone else meanwhile.
        """
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=max_deliver,
            ack_wait=ack_wait.total_seconds(),
            deliver_policy=DeliverPolicy.NEW if deliver_new else DeliverPolicy.ALL,
            max_ack_pending=max(1000, batch * 4),
        )
        # Several subjects in one consumer keep their relative order (handled one at a time).
        if isinstance(subject, str):
            config.filter_subject = subject
        else:
            config.filter_subjects = list(subject)
        first = subject if isinstance(subject, str) else subject[0]
        # Create or update: a consumer that exists from an earlier release gets today's subjects.
        await self.js.add_consumer(EVENTS_STREAM, config)
        sub = await self.js.pull_subscribe(
            first, durable=durable, stream=EVENTS_STREAM, config=config
        )
        progress = progress_every.total_seconds() if progress_every else None
        consumer = _Consumer(durable, handler, max_deliver, retry, progress)
        self._loops.append(asyncio.create_task(self._pull_loop(sub, consumer, batch)))

    async def _pull_loop(self, sub: Any, consumer: _Consumer, batch: int) -> None:
        durable, retry = consumer.durable, consumer.retry
        while self._accepting:
            try:
                messages = await sub.fetch(batch, timeout=1.0)
            except (NatsTimeoutError, TimeoutError):
                continue
            except Exception as exc:  # connection trouble: wait for the reconnect
                if not self._accepting:
                    return
                logger.warning("consumer %s cannot fetch (%s); retrying", durable, exc)
                await asyncio.sleep(retry.delay(1))
                continue
            for msg in messages:
                await self._track(self._handle_event(msg, consumer))

    async def _handle_event(self, msg: Msg, consumer: _Consumer) -> None:
        durable, retry = consumer.durable, consumer.retry
        headers = dict(msg.headers or {})
        kind = headers.get("Cogplane-Type", msg.subject)
        ctx = extract_context(headers)
        with _tracer.start_as_current_span(
            f"process {kind}", context=ctx, kind=SpanKind.CONSUMER
        ) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.consumer.group.name", durable)
            try:
                await self._run_handler(msg, consumer, headers)
            except (PermanentFailure, ValidationError) as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                await self._dead_letter(msg, durable, exc)
                return
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                delivered = msg.metadata.num_delivered
                if delivered >= consumer.max_deliver:
                    await self._dead_letter(msg, durable, exc)
                    return
                logger.warning("%s failed on %s (attempt %d): %s", durable, kind, delivered, exc)
                await msg.nak(delay=retry.delay(delivered))
                return
            await msg.ack()

    @staticmethod
    async def _run_handler(msg: Msg, consumer: _Consumer, headers: dict[str, str]) -> None:
        if consumer.progress_every is None:
            await consumer.handler(msg.data, headers)
            return

        async def keep_alive() -> None:
            while True:
                await asyncio.sleep(consumer.progress_every or 1.0)
                with contextlib.suppress(Exception):
                    await msg.in_progress()

        ticker = asyncio.create_task(keep_alive())
        try:
            await consumer.handler(msg.data, headers)
        finally:
            ticker.cancel()

    async def _dead_letter(self, msg: Msg, durable: str, exc: BaseException) -> None:
        logger.error("dead-lettering %s for %s: %s", msg.subject, durable, exc)
        headers = {k: v for k, v in (msg.headers or {}).items() if k != "Nats-Msg-Id"}
        headers.update({"Cogplane-Consumer": durable, "Cogplane-Error": str(exc)[:500]})
        headers["Cogplane-Original-Subject"] = msg.subject
        await self.js.publish(f"{DEAD_LETTER_PREFIX}.{durable}", msg.data, headers=headers)
        await msg.term()

    # -- objects -------------------------------------------------------------------------------

    async def put_object(self, bucket: str, name: str, source: BinaryIO) -> None:
        """Store ``source`` (read in chunks) as object ``name``."""
        store = await self.js.object_store(bucket)
        await store.put(name, source)  # type: ignore[arg-type]

    async def get_object(self, bucket: str, name: str, into: BinaryIO) -> None:
        """Write object ``name`` into ``into``; NotFound if it does not exist."""
        store = await self.js.object_store(bucket)
        try:
            await store.get(name, writeinto=into)  # type: ignore[arg-type]
        except ObjectNotFoundError as exc:
            raise NotFound(f"Object {name} not found") from exc

    async def delete_object(self, bucket: str, name: str) -> bool:
        """Remove object ``name``; whether it existed."""
        store = await self.js.object_store(bucket)
        try:
            await store.delete(name)
        except ObjectNotFoundError:
            return False
        return True

    async def has_object(self, bucket: str, name: str) -> bool:
        """Whether object ``name`` exists."""
        store = await self.js.object_store(bucket)
        try:
            await store.get_info(name)
        except ObjectNotFoundError:
            return False
        return True

    # -- broadcasts ----------------------------------------------------------------------------

    async def broadcast(self, notice: Broadcast) -> None:
        """Send a best-effort notice to every subscriber (not stored, not retried)."""
        await self.nc.publish(notice.subject, notice.model_dump_json().encode())

    async def on_broadcast(self, kind: type[B], handler: Callable[[B], None]) -> None:
        """Call ``handler`` with every notice of ``kind`` (in every process, no queue group)."""

        async def on_message(msg: Msg) -> None:
            try:
                handler(kind.model_validate_json(msg.data))
            except ValidationError:
                logger.warning("ignoring malformed %s notice", kind.__name__)

        subject = f"{BROADCAST_PREFIX}.{kind.subject_suffix}"
        self._subscriptions.append(await self.nc.subscribe(subject, cb=on_message))
        await self.nc.flush()

    async def on_events(self, kind: type[E], handler: Callable[[E], None]) -> None:
        """Watch events of ``kind`` as they are published, without a durable consumer.

        For observers that want speed, not durability: nothing is redelivered or replayed.
        """

        async def on_message(msg: Msg) -> None:
            try:
                handler(kind.model_validate_json(msg.data))
            except ValidationError:
                logger.warning("ignoring malformed %s event", kind.__name__)

        subject = f"{EVENTS_PREFIX}.{kind.subject_suffix}"
        self._subscriptions.append(await self.nc.subscribe(subject, cb=on_message))
        await self.nc.flush()

    # -- request-reply ------------------------------------------------------------------------

    async def request(
        self,
        rpc: Rpc[Req, Resp],
        body: Req,
        timeout: float | None = None,
        *,
        subject: str | None = None,
    ) -> Resp:
        """Call ``rpc`` and return its typed reply; a problem reply is raised as CogplaneError.

        ``subject`` overrides the call's subject, for calls addressed to one node.
        """
        if not self.connected:  # fail fast rather than queue the request while reconnecting
            raise Unavailable(f"Cannot call {rpc.name}: not connected to NATS")
        with _tracer.start_as_current_span(f"request {rpc.name}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", rpc.subject)
            try:
                msg = await self.nc.request(
                    subject or rpc.subject,
                    body.model_dump_json().encode(),
                    timeout=timeout or self.request_timeout,
                    headers=inject_headers(),
                )
            except NoRespondersError as exc:
                raise Unavailable(f"No service answers {rpc.name} right now") from exc
            except (NatsTimeoutError, TimeoutError) as exc:
                raise Unavailable(f"{rpc.name} did not answer in time") from exc
            reply = RpcReply.model_validate_json(msg.data)
            if not reply.ok:
                raise CogplaneError.from_problem(reply.error or {})
            return rpc.response.model_validate(reply.result or {})

    async def serve(
        self,
        rpc: Rpc[Req, Resp],
        handler: Callable[[Req], Awaitable[Resp]],
        *,
        subject: str | None = None,
    ) -> None:
        """Answer ``rpc`` with ``handler`` (in this service's queue group).

        ``subject`` overrides the call's subject, for calls addressed to one node.
        """

        async def on_message(msg: Msg) -> None:
            if not self._accepting:
                return
            self._inflight_add(asyncio.create_task(self._answer(rpc, handler, msg)))

        sub = await self.nc.subscribe(subject or rpc.subject, queue=self.name, cb=on_message)
        self._subscriptions.append(sub)
        await self.nc.flush()  # the server knows the subscription before we call ourselves ready

    async def _answer(
        self, rpc: Rpc[Req, Resp], handler: Callable[[Req], Awaitable[Resp]], msg: Msg
    ) -> None:
        ctx = extract_context(msg.headers)
        with _tracer.start_as_current_span(
            f"handle {rpc.name}", context=ctx, kind=SpanKind.SERVER
        ) as span:
            span.set_attribute("messaging.system", "nats")
            try:
                request = rpc.request.model_validate_json(msg.data)
                result = await handler(request)
                reply = RpcReply(ok=True, result=result.model_dump(mode="json"))
            except ValidationError as exc:
                reply = RpcReply(ok=False, error=InvalidInput.of(exc).to_problem())
            except CogplaneError as exc:
                reply = RpcReply(ok=False, error=exc.to_problem())
            except Exception as exc:
                logger.exception("handler of %s failed", rpc.name)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                reply = RpcReply(
                    ok=False, error=CogplaneError("An unexpected error occurred").to_problem()
                )
            if msg.reply:
                with contextlib.suppress(Exception):
                    await msg.respond(reply.model_dump_json().encode())

    # -- lifecycle ----------------------------------------------------------------------------

    async def _track(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._inflight_add(task)
        await asyncio.shield(task)

    def _inflight_add(self, task: asyncio.Task[None]) -> None:
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    @property
    def inflight(self) -> int:
        """How many messages are being handled now."""
        return len(self._inflight)

    async def stop_intake(self) -> None:
        """Take no new requests or events; work already started goes on."""
        self._accepting = False
        for sub in self._subscriptions:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subscriptions.clear()
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()

    async def wait_idle(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for in-flight handlers, then cancel the rest."""
        pending = set(self._inflight)
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def close(self) -> None:
        """Stop intake and close the connection."""
        await self.stop_intake()
        self._closing = True
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await self._nc.close()
