"""The autoscaler's decision log, queried by the gateway's monitoring endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from cogplane.common.contracts.base import Contract, Rpc


class ScalingDecision(Contract):
    """One decision: how many instances a target should have, and why."""

    id: str
    target: str
    current: int
    desired: int
    reason: str
    decided_at: datetime


class DecisionQuery(Contract):
    target: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


class DecisionList(Contract):
    results: list[ScalingDecision]


LIST_DECISIONS = Rpc("autoscaler.decisions.list", DecisionQuery, DecisionList)
