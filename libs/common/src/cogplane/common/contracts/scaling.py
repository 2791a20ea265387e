"""The autoscaler's decision log, queried by the gateway's monitoring endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

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


class SeriesQuery(Contract):
    target: str = Field(max_length=200)
    since: datetime
    until: datetime
    step_seconds: int = Field(default=60, ge=1, le=86400)


class TargetSample(Contract):
    """A target's state at the end of one step: queue, work in flight, instances by state."""

    at: datetime
    queued: int
    inflight: int
    desired: int
    instances: dict[str, int] = Field(default_factory=dict)


class TargetSeries(Contract):
    results: list[TargetSample]


TARGET_SERIES = Rpc("autoscaler.targets.series", SeriesQuery, TargetSeries)


class InstanceView(Contract):
    """An instance as the autoscaler sees it."""

    id: str
    state: str
    busy: int
    slots: int
    state_since: datetime
    created_at: datetime
    release: int = 0


class TargetState(Contract):
    """What the autoscaler decides from, for one target.

    ``instances`` are those not asked to stop, of every release; ``release`` is the one the
    target's new instances run (0 for a version's shared pool).
    """

    target: str
    kind: Literal["version", "deployment"] = "version"
    release: int = 0
    queued: int
    inflight: int
    oldest_queued_at: datetime | None = None
    last_activity_at: datetime
    desired: int
    instances: list[InstanceView] = Field(default_factory=list)
    min_instances: int = 0
    max_instances: int = 1
    slots: int = Field(default=1, ge=1, description="Predictions one instance runs at once.")


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
