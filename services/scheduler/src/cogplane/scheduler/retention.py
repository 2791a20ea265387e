"""Data retention: the input, output and logs of finished predictions are removed after a while.

Replicate removes them an hour after an API prediction ends and keeps web predictions' for 90
days; the prediction itself stays, with ``data_removed: true`` and ``output: null``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import Index, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cogplane.common.bus import Bus
from cogplane.common.contracts.base import OUTPUTS_BUCKET
from cogplane.common.db import Database, utcnow
from cogplane.common.errors import CogplaneError
from cogplane.common.service import Runtime
from cogplane.scheduler.config import SchedulerSettings
from cogplane.scheduler.work.models import PredictionRow

logger = logging.getLogger(__name__)
BATCH = 1000

# Only predictions that still hold data are indexed, so the sweep stays cheap as history grows.
RETENTION_INDEX = Index(
    "ix_predictions_retention",
    PredictionRow.completed_at,
    postgresql_where=PredictionRow.data_removed.is_(False),
)


async def remove_expired(
    session: AsyncSession, api_before: datetime, web_before: datetime, limit: int = BATCH
) -> tuple[int, list[str]]:
    """Remove the data of up to ``limit`` predictions that ended before their cutoffs.

    Returns how many were cleared and the output files they held, for the caller to delete
    from the object store before committing.
    """
    due = (
        select(PredictionRow.id, PredictionRow.output_objects)
        .where(
            PredictionRow.data_removed.is_(False),
            PredictionRow.completed_at < max(api_before, web_before),
            ((PredictionRow.source == "api") & (PredictionRow.completed_at < api_before))
            | ((PredictionRow.source == "web") & (PredictionRow.completed_at < web_before)),
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = (await session.execute(due)).all()
    ids = [row.id for row in rows]
    if ids:
        await session.execute(
            update(PredictionRow)
            .where(PredictionRow.id.in_(ids))
            .values(input={}, output=None, logs="", data_removed=True, output_objects=[])
        )
    return len(ids), [name for row in rows for name in row.output_objects or []]


class Retention:
    """The loop that removes expired prediction data."""

    def __init__(self, db: Database, settings: SchedulerSettings, bus: Bus) -> None:
        self.db = db
        self.bus = bus
        self.api = settings.retention_api
        self.web = settings.retention_web
        self.interval = settings.retention_interval.total_seconds()

    async def sweep(self, now: datetime | None = None) -> int:
        """Remove everything that has expired by ``now``; how many predictions were cleared."""
        now = now or utcnow()
        total = 0
        while True:
            async with self.db.unit_of_work() as session:
                count, files = await remove_expired(session, now - self.api, now - self.web)
                # Before the commit: if a file cannot be deleted, the batch stays for next time.
                for name in files:
                    await self.bus.delete_object(OUTPUTS_BUCKET, name)
            total += count
            if count < BATCH:
                return total

    async def run_forever(self) -> None:
        """Sweep every ``interval``."""
        while True:
            try:
                if removed := await self.sweep():
                    logger.info("removed the data of %d predictions", removed)
            except CogplaneError as exc:
                logger.warning("retention sweep failed: %s", exc.detail)
            except Exception as exc:  # NATS unreachable while deleting files: try again later
                logger.warning("retention sweep failed: %r", exc)
            await asyncio.sleep(self.interval)


def register(rt: Runtime) -> None:
    """Start the retention loop."""
    settings = rt.settings
    assert isinstance(settings, SchedulerSettings)
    retention = Retention(rt.require_db(), settings, rt.bus)
    rt.extras["retention"] = retention
    rt.spawn(retention.run_forever(), "retention")
