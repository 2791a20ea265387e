"""All SQL of predictions, targets and instances."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cogplane.common.contracts.instances import LIVE_STATES
from cogplane.scheduler.work.models import InstanceRow, PredictionRow, TargetRow

OPEN = ("starting", "processing")


class WorkRepository:
    """Predictions, targets and instances."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: PredictionRow | InstanceRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def ensure_target(self, target: str, version_spec: dict[str, Any], at: datetime) -> None:
        statement = insert(TargetRow).values(
            id=target, version_spec=version_spec, created_at=at, last_activity_at=at
        )
        statement = statement.on_conflict_do_update(
            index_elements=[TargetRow.id], set_={"last_activity_at": at}
        )
        await self.session.execute(statement)

    async def target(self, target: str) -> TargetRow | None:
        return await self.session.get(TargetRow, target)

    async def active_targets(self) -> list[TargetRow]:
        """Targets with live instances or open predictions: the only ones worth a decision."""
        live = select(InstanceRow.target).where(InstanceRow.state.in_([*LIVE_STATES, "pending"]))
        busy = select(PredictionRow.target).where(PredictionRow.status.in_(OPEN))
        query = select(TargetRow).where(TargetRow.id.in_(live) | TargetRow.id.in_(busy))
        return list((await self.session.execute(query)).scalars())

    async def prediction(self, prediction_id: str, *, lock: bool = False) -> PredictionRow | None:
        query = select(PredictionRow).where(PredictionRow.id == prediction_id)
        if lock:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def queued(self, target: str, limit: int) -> list[PredictionRow]:
        """The oldest predictions of ``target`` waiting for an instance, locked."""
        query = (
            select(PredictionRow)
            .where(
                PredictionRow.target == target,
                PredictionRow.status == "starting",
                PredictionRow.instance_id.is_(None),
            )
            .order_by(PredictionRow.created_at, PredictionRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(query)).scalars())

    async def on_instance(self, instance_id: str) -> list[PredictionRow]:
        query = (
            select(PredictionRow)
            .where(PredictionRow.instance_id == instance_id, PredictionRow.status.in_(OPEN))
            .with_for_update()
        )
        return list((await self.session.execute(query)).scalars())

    async def busy_by_instance(self, target: str) -> dict[str, int]:
        query = (
            select(PredictionRow.instance_id, func.count())
            .where(
                PredictionRow.target == target,
                PredictionRow.status.in_(OPEN),
                PredictionRow.instance_id.is_not(None),
            )
            .group_by(PredictionRow.instance_id)
        )
        return {str(k): int(v) for k, v in (await self.session.execute(query)).all()}

    async def counts(self, target: str) -> tuple[int, int, datetime | None]:
        """Queued, in flight, and when the oldest queued prediction arrived."""
        queued = select(func.count(), func.min(PredictionRow.created_at)).where(
            PredictionRow.target == target,
            PredictionRow.status == "starting",
            PredictionRow.instance_id.is_(None),
        )
        inflight = select(func.count()).where(
            PredictionRow.target == target,
            PredictionRow.status.in_(OPEN),
            PredictionRow.instance_id.is_not(None),
        )
        count, oldest = (await self.session.execute(queued)).one()
        running = (await self.session.execute(inflight)).scalar_one()
        return int(count), int(running), oldest

    async def instance(self, instance_id: str, *, lock: bool = False) -> InstanceRow | None:
        query = select(InstanceRow).where(InstanceRow.id == instance_id)
        if lock:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def live_instances(self, target: str | None = None) -> list[InstanceRow]:
        query = select(InstanceRow).where(InstanceRow.state.in_([*LIVE_STATES, "pending"]))
        if target is not None:
            query = query.where(InstanceRow.target == target)
        return list((await self.session.execute(query.order_by(InstanceRow.created_at))).scalars())

    async def expired(
        self, now: datetime, queue_cutoff: datetime, run_cutoff: datetime
    ) -> list[PredictionRow]:
        """Open predictions past their deadline, queue timeout or run timeout."""
        query = select(PredictionRow).where(
            PredictionRow.status.in_(OPEN),
            (PredictionRow.deadline < now)
            | ((PredictionRow.instance_id.is_(None)) & (PredictionRow.created_at < queue_cutoff))
            | (PredictionRow.started_at < run_cutoff),
        )
        return list((await self.session.execute(query.limit(500))).scalars())

    async def page(
        self,
        owner_account_id: str,
        after: tuple[datetime, str] | None,
        limit: int,
        created_after: datetime | None,
        created_before: datetime | None,
        source: str | None,
    ) -> list[PredictionRow]:
        query = select(PredictionRow).where(PredictionRow.owner_account_id == owner_account_id)
        if after is not None:
            query = query.where(tuple_(PredictionRow.created_at, PredictionRow.id) < after)
        if created_after is not None:
            query = query.where(PredictionRow.created_at > created_after)
        if created_before is not None:
            query = query.where(PredictionRow.created_at < created_before)
        if source is not None:
            query = query.where(PredictionRow.source == source)
        query = query.order_by(PredictionRow.created_at.desc(), PredictionRow.id.desc()).limit(
            limit
        )
        return list((await self.session.execute(query)).scalars())
