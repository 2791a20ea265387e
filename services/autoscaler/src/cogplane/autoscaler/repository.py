"""All SQL of the decision log and the target samples."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cogplane.autoscaler.models import DecisionRow, SampleRow


class DecisionRepository:
    """Scaling decisions and samples."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: DecisionRow | SampleRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def add_all(self, rows: list[DecisionRow | SampleRow]) -> None:
        """Insert many rows in one round trip per table."""
        self.session.add_all(rows)
        await self.session.flush()

    async def recent(self, target: str | None, limit: int) -> list[DecisionRow]:
        query = select(DecisionRow).order_by(DecisionRow.decided_at.desc()).limit(limit)
        if target is not None:
            query = query.where(DecisionRow.target == target)
        return list((await self.session.execute(query)).scalars())

    async def series(
        self, target: str, since: datetime, until: datetime, step_seconds: int, limit: int = 5000
    ) -> list[SampleRow]:
        """The last sample of each step between ``since`` and ``until``, oldest first."""
        bucket = func.floor(func.extract("epoch", SampleRow.at) / step_seconds)
        ranked = (
            select(
                SampleRow.id,
                func.row_number()
                .over(partition_by=bucket, order_by=SampleRow.at.desc())
                .label("n"),
            )
            .where(SampleRow.target == target, SampleRow.at >= since, SampleRow.at < until)
            .subquery()
        )
        query = (
            select(SampleRow)
            .join(ranked, ranked.c.id == SampleRow.id)
            .where(ranked.c.n == 1)
            .order_by(SampleRow.at)
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars())

    async def forget_before(self, cutoff: datetime) -> None:
        """Drop samples and decisions older than ``cutoff``."""
        await self.session.execute(delete(SampleRow).where(SampleRow.at < cutoff))
        await self.session.execute(delete(DecisionRow).where(DecisionRow.decided_at < cutoff))
