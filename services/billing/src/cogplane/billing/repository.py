"""All SQL of billing's intake."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cogplane.billing.models import RecordedEventRow


class IntakeRepository:
    """Recorded events."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, event_id: str, kind: str, occurred_at: datetime) -> bool:
        """Record an event; False when it was recorded before (a duplicate delivery)."""
        statement = (
            insert(RecordedEventRow)
            .values(event_id=event_id, type=kind, occurred_at=occurred_at)
            .on_conflict_do_nothing(index_elements=[RecordedEventRow.event_id])
            .returning(RecordedEventRow.event_id)
        )
        return (await self.session.execute(statement)).scalar_one_or_none() is not None

    async def status(self) -> tuple[int, datetime | None]:
        query = select(func.count(), func.max(RecordedEventRow.occurred_at))
        count, last = (await self.session.execute(query)).one()
        return int(count), last
