"""Billing's view of the event stream."""

from __future__ import annotations

from datetime import datetime

from cogplane.common.contracts.base import Contract, Empty, Rpc


class IngestStatus(Contract):
    """How far billing has read the event stream."""

    events_recorded: int
    last_event_at: datetime | None = None


INGEST_STATUS = Rpc("billing.ingest.status", Empty, IngestStatus)
