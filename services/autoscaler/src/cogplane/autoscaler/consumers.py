"""The autoscaler's NATS handlers."""

from __future__ import annotations

from cogplane.autoscaler.repository import DecisionRepository
from cogplane.common.contracts.scaling import (
    LIST_DECISIONS,
    DecisionList,
    DecisionQuery,
    ScalingDecision,
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
