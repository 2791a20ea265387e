"""The autoscaler's NATS handlers."""

from __future__ import annotations

from cogplane.autoscaler.config import AutoscalerSettings
from cogplane.autoscaler.decide import Policy
from cogplane.autoscaler.loop import Autoscaler
from cogplane.autoscaler.repository import DecisionRepository
from cogplane.common.contracts.scaling import (
    LIST_DECISIONS,
    DecisionList,
    DecisionQuery,
    ScalingDecision,
    TargetChanged,
)
from cogplane.common.service import Runtime


async def register(rt: Runtime) -> None:
    """Answer queries of the decision log."""
    db = rt.require_db()

    async def list_decisions(query: DecisionQuery) -> DecisionList:
        async with db.unit_of_work() as session:
            rows = await DecisionRepository(session).recent(query.target, query.limit)
            return DecisionList(
                results=[ScalingDecision.model_validate(r, from_attributes=True) for r in rows]
            )

    await rt.bus.serve(LIST_DECISIONS, list_decisions)
    settings = rt.settings
    assert isinstance(settings, AutoscalerSettings)
    policy = Policy(idle_timeout=settings.idle_timeout)
    scaler = Autoscaler(rt, policy, settings.tick_interval.total_seconds())
    await rt.bus.on_broadcast(TargetChanged, scaler.on_change)
    rt.spawn(scaler.run(), "autoscaler")
