"""The autoscaler's NATS handlers and its loop."""

from __future__ import annotations

import asyncio
import logging

from cogplane.autoscaler.config import AutoscalerSettings
from cogplane.autoscaler.decide import Policy
from cogplane.autoscaler.loop import Autoscaler, Timing
from cogplane.autoscaler.repository import DecisionRepository
from cogplane.common.contracts.scaling import (
    LIST_DECISIONS,
    TARGET_SERIES,
    DecisionList,
    DecisionQuery,
    ScalingDecision,
    SeriesQuery,
    TargetChanged,
    TargetSample,
    TargetSeries,
)
from cogplane.common.db import utcnow
from cogplane.common.errors import CogplaneError
from cogplane.common.service import Runtime

logger = logging.getLogger(__name__)


async def register(rt: Runtime) -> None:
    """Answer queries of the decision log and the time series; run the decision loop."""
    db = rt.require_db()
    settings = rt.settings
    assert isinstance(settings, AutoscalerSettings)

    async def list_decisions(query: DecisionQuery) -> DecisionList:
        async with db.unit_of_work() as session:
            rows = await DecisionRepository(session).recent(query.target, query.limit)
            return DecisionList(
                results=[ScalingDecision.model_validate(r, from_attributes=True) for r in rows]
            )

    async def series(query: SeriesQuery) -> TargetSeries:
        async with db.unit_of_work() as session:
            rows = await DecisionRepository(session).series(
                query.target, query.since, query.until, query.step_seconds
            )
            return TargetSeries(
                results=[TargetSample.model_validate(r, from_attributes=True) for r in rows]
            )

    async def forget_forever() -> None:
        while True:
            try:
                async with db.unit_of_work() as session:
                    await DecisionRepository(session).forget_before(
                        utcnow() - settings.history_retention
                    )
            except CogplaneError as exc:
                logger.warning("old samples not deleted: %s", exc.detail)
            await asyncio.sleep(3600)

    await rt.bus.serve(LIST_DECISIONS, list_decisions)
    await rt.bus.serve(TARGET_SERIES, series)
    policy = Policy(
        idle_timeout=settings.idle_timeout,
        stable_window=settings.stable_window,
        target_per_slot=settings.target_per_slot,
    )
    timing = Timing(
        interval=settings.tick_interval.total_seconds(),
        min_gap=settings.min_gap.total_seconds(),
        lease_ttl=settings.lease_ttl,
        sample_every=settings.sample_interval,
    )
    scaler = Autoscaler(rt, policy, timing)
    rt.extras["autoscaler"] = scaler
    await rt.bus.on_broadcast(TargetChanged, scaler.on_change)
    rt.spawn(scaler.run(), "autoscaler")
    rt.spawn(forget_forever(), "forget old samples")


async def stop(rt: Runtime) -> None:
    """Hand this replica's targets over at once."""
    scaler = rt.extras.get("autoscaler")
    if isinstance(scaler, Autoscaler):
        try:
            await scaler.release()
        except CogplaneError as exc:
            logger.warning("leases not handed over (they expire by themselves): %s", exc.detail)
