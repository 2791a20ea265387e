"""Billing's NATS handlers: a durable consumer of every event, and its status."""

from __future__ import annotations

from cogplane.billing.repository import IntakeRepository
from cogplane.common.contracts.base import Empty
from cogplane.common.contracts.billing import INGEST_STATUS, IngestStatus
from cogplane.common.contracts.events import parse_event
from cogplane.common.service import Runtime

EVENTS = "cogplane.events.>"
CONSUMER = "billing-intake"


async def register(rt: Runtime) -> None:
    """Take in every event exactly once (by id); report how far intake has come."""
    db = rt.require_db()

    async def on_event(data: bytes, _: dict[str, str]) -> None:
        event = parse_event(data)
        async with db.unit_of_work() as session:
            await IntakeRepository(session).record(event.id, event.type, event.occurred_at)

    async def status(_: Empty) -> IngestStatus:
        async with db.unit_of_work() as session:
            count, last = await IntakeRepository(session).status()
        return IngestStatus(events_recorded=count, last_event_at=last)

    await rt.bus.consume(CONSUMER, EVENTS, on_event)
    await rt.bus.serve(INGEST_STATUS, status)
