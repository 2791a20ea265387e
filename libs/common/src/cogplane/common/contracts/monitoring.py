"""Monitoring of a target (a deployment's queue and instances): what the scheduler reports.

The time series of queue depth and instances by state come from the autoscaler's samples
(``scaling.TARGET_SERIES``); prediction counts and latencies come from here.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from cogplane.common.contracts.base import Contract, Rpc
from cogplane.common.contracts.deployments import TargetRef


class InstanceInfo(Contract):
    """One instance of a target, with its state and since when."""

    id: str
    state: str
    state_since: datetime
    created_at: datetime
    release: int
    node_id: str
    hardware: str
    slots: int
    busy: int
    stopping: bool
    reason: str | None = None


class InstanceList(Contract):
    results: list[InstanceInfo]


class StatsQuery(Contract):
    target: str = Field(max_length=200)
    since: datetime
    until: datetime
    step_seconds: int = Field(default=60, ge=1, le=86400)


class Percentiles(Contract):
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


class StatsBucket(Contract):
    """Predictions created in one step, by outcome, with their latencies in seconds."""

    at: datetime
    created: int = 0
    succeeded: int = 0
    failed: int = 0
    canceled: int = 0
    queue_wait: Percentiles = Field(default_factory=Percentiles)
    predict_time: Percentiles = Field(default_factory=Percentiles)


class TargetStats(Contract):
    results: list[StatsBucket]


LIST_INSTANCES = Rpc("scheduler.targets.instances", TargetRef, InstanceList)
TARGET_STATS = Rpc("scheduler.targets.stats", StatsQuery, TargetStats)
