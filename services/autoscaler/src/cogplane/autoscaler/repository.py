"""All SQL of the decision log."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cogplane.autoscaler.models import DecisionRow


class DecisionRepository:
    """Scaling decisions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: DecisionRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def recent(self, target: str | None, limit: int) -> list[DecisionRow]:
        query = select(DecisionRow).order_by(DecisionRow.decided_at.desc()).limit(limit)
        if target is not None:
            query = query.where(DecisionRow.target == target)
        return list((await self.session.execute(query)).scalars())
