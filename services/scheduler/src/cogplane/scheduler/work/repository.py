"""All SQL of predictions, targets and instances."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cogplane.common.contracts.instances import LIVE_STATES
from cogplane.common.contracts.predictions import DeploymentPlacement
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

    async def ensure_deployment_target(
        self, placement: DeploymentPlacement, version_spec: dict[str, Any], at: datetime
    ) -> None:
        """The deployment's target exists with at least the placement's release."""
        await self.apply_release(
            target=placement.target,
            deployment=placement.deployment,
            release=placement.release,
            version_spec=version_spec,
            hardware=placement.hardware,
            min_instances=placement.min_instances,
            max_instances=placement.max_instances,
            at=at,
        )
        await self.session.execute(
            update(TargetRow).where(TargetRow.id == placement.target).values(last_activity_at=at)
        )

    async def apply_release(
        self,
        *,
        target: str,
        deployment: str,
        release: int,
        version_spec: dict[str, Any],
        hardware: str,
        min_instances: int,
        max_instances: int,
        at: datetime,
    ) -> bool:
        """Make ``release`` the target's configuration unless a later one is there already."""
        values = {
            "kind": "deployment",
            "deployment": deployment,
            "release": release,
            "version_spec": version_spec,
            "hardware": hardware,
            "min_instances": min_instances,
            "max_instances": max_instances,
        }
        statement = insert(TargetRow).values(
            id=target, created_at=at, last_activity_at=at, deleted=False, **values
        )
        upsert = statement.on_conflict_do_update(
            index_elements=[TargetRow.id],
            set_={k: statement.excluded[k] for k in values},
            where=(TargetRow.release < statement.excluded.release) & TargetRow.deleted.is_(False),
        ).returning(TargetRow.id)
        return (await self.session.execute(upsert)).first() is not None

    async def mark_deleted(self, target: str) -> None:
        await self.session.execute(
            update(TargetRow).where(TargetRow.id == target).values(deleted=True, desired=0)
        )

    async def target(self, target: str, *, lock: bool = False) -> TargetRow | None:
        query = select(TargetRow).where(TargetRow.id == target)
        if lock:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def active_targets(self) -> list[TargetRow]:
        """Targets worth a decision: with live instances, open predictions, or a deployment's."""
        live = select(InstanceRow.target).where(InstanceRow.state.in_([*LIVE_STATES, "pending"]))
        busy = select(PredictionRow.target).where(PredictionRow.status.in_(OPEN))
        deployed = (TargetRow.kind == "deployment") & TargetRow.deleted.is_(False)
        query = select(TargetRow).where(TargetRow.id.in_(live) | TargetRow.id.in_(busy) | deployed)
        return list((await self.session.execute(query)).scalars())

    async def open_counts(self) -> dict[str, tuple[int, int, datetime | None]]:
        """Per target: queued, in flight, and when the oldest queued prediction arrived."""
        waiting = PredictionRow.instance_id.is_(None)
        query = (
            select(
                PredictionRow.target,
                func.count().filter(waiting),
                func.count().filter(~waiting),
                func.min(PredictionRow.created_at).filter(waiting),
            )
            .where(PredictionRow.status.in_(OPEN))
            .group_by(PredictionRow.target)
        )
        rows = (await self.session.execute(query)).all()
        return {str(t): (int(q), int(r), oldest) for t, q, r, oldest in rows}

    async def busy_all(self) -> dict[str, int]:
        """Open predictions per instance, over every target."""
        query = (
            select(PredictionRow.instance_id, func.count())
            .where(PredictionRow.status.in_(OPEN), PredictionRow.instance_id.is_not(None))
            .group_by(PredictionRow.instance_id)
        )
        return {str(k): int(v) for k, v in (await self.session.execute(query)).all()}

    async def unplaced_targets(self) -> list[str]:
        """Targets with instances waiting for capacity."""
        query = (
            select(InstanceRow.target)
            .where(InstanceRow.state == "pending", InstanceRow.node_id == "")
            .distinct()
        )
        return [str(t) for t in (await self.session.execute(query)).scalars()]

    async def failures(self, target: str, release: int, since: datetime) -> list[datetime]:
        """When instances of the target's release failed on their own since ``since``, newest
        first (instances lost with their runner are not the release's fault)."""
        query = (
            select(InstanceRow.state_since)
            .where(
                InstanceRow.target == target,
                InstanceRow.release == release,
                InstanceRow.state == "failed",
                InstanceRow.state_since >= since,
                ~func.coalesce(InstanceRow.reason, "").startswith("its runner"),
            )
            .order_by(InstanceRow.state_since.desc())
        )
        return list((await self.session.execute(query)).scalars())

    async def on_nodes(self, node_ids: list[str]) -> list[InstanceRow]:
        """Live instances placed on ``node_ids``, locked."""
        query = (
            select(InstanceRow)
            .where(
                InstanceRow.node_id.in_(node_ids),
                InstanceRow.state.in_([*LIVE_STATES, "pending"]),
            )
            .with_for_update()
        )
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

    async def stats(
        self, target: str, since: datetime, until: datetime, step_seconds: int
    ) -> list[dict[str, Any]]:
        """Per step of ``created_at``: counts by outcome and latency percentiles (seconds)."""
        bucket = func.floor(func.extract("epoch", PredictionRow.created_at) / step_seconds)
        wait = func.extract("epoch", PredictionRow.started_at - PredictionRow.created_at)
        predict = PredictionRow.metrics["predict_time"].as_float()

        def pct(expr: Any, q: float) -> Any:
            return func.percentile_cont(q).within_group(expr)

        def count(status: str) -> Any:
            return func.count().filter(PredictionRow.status == status)

        query = (
            select(
                bucket.label("bucket"),
                func.count().label("created"),
                count("succeeded").label("succeeded"),
                count("failed").label("failed"),
                count("canceled").label("canceled"),
                *(pct(wait, q).label(f"wait_{n}") for n, q in PERCENTILES),
                *(pct(predict, q).label(f"predict_{n}") for n, q in PERCENTILES),
            )
            .where(
                PredictionRow.target == target,
                PredictionRow.created_at >= since,
                PredictionRow.created_at < until,
            )
            .group_by(bucket)
            .order_by(bucket)
        )
        return [dict(row._mapping) for row in (await self.session.execute(query)).all()]


PERCENTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
