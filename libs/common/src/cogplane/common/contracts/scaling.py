"""The autoscaler's decision log, queried by the gateway's monitoring endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from cogplane.common.contracts.base import Broadcast, Contract, Empty, Rpc


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


class InstanceView(Contract):
    """An instance as the autoscaler sees it."""

    id: str
    state: str
    busy: int
    slots: int
    state_since: datetime
    created_at: datetime


class TargetState(Contract):
    """What the autoscaler decides from, for one target."""

    target: str
    queued: int
    inflight: int
    oldest_queued_at: datetime | None = None
    last_activity_at: datetime
    desired: int
    instances: list[InstanceView] = Field(default_factory=list)
    min_instances: int = 0
    max_instances: int = 1


class TargetStates(Contract):
    results: list[TargetState]


class SetDesired(Contract):
    target: str
    desired: int = Field(ge=0)
    reason: str


LIST_TARGETS = Rpc("scheduler.targets.list", Empty, TargetStates)
SET_DESIRED = Rpc("scheduler.targets.set_desired", SetDesired, Empty)


class TargetChanged(Broadcast):
    """Work arrived or finished on a target: the autoscaler should look again now."""

    subject_suffix: ClassVar[str] = "targets.changed"
    target: str
