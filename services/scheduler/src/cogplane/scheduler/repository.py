"""All SQL of the runner inventory."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cogplane.common.contracts.runners import RunnerHeartbeat
from cogplane.scheduler.models import RunnerNodeRow


class RunnerRepository:
    """Runner nodes."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_heartbeat(self, beat: RunnerHeartbeat, seen_at: datetime) -> None:
        """Upsert the node; an older heartbeat arriving late never overwrites a newer one."""
        values = {
            "node_id": beat.node_id,
            "hostname": beat.hostname,
            "started_at": beat.started_at,
            "last_seen_at": seen_at,
            "last_event_at": beat.occurred_at,
            "capacity": [c.model_dump() for c in beat.capacity],
            "draining": beat.draining,
            "stopped": False,
        }
        statement = insert(RunnerNodeRow).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[RunnerNodeRow.node_id],
            set_={k: statement.excluded[k] for k in values if k != "node_id"},
            where=RunnerNodeRow.last_event_at <= statement.excluded.last_event_at,
        )
        await self.session.execute(statement)

    async def mark_stopped(self, node_id: str, occurred_at: datetime) -> None:
        await self.session.execute(
            update(RunnerNodeRow)
            .where(RunnerNodeRow.node_id == node_id, RunnerNodeRow.last_event_at <= occurred_at)
            .values(stopped=True, last_event_at=occurred_at)
        )

    async def all(self) -> list[RunnerNodeRow]:
        query = select(RunnerNodeRow).order_by(RunnerNodeRow.node_id)
        return list((await self.session.execute(query)).scalars())
