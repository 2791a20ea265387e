"""Billing: its view of the event stream, usage and cost queries, and estimates.

Money travels as decimal strings (``"0.000225"``), never floats: the ledger is exact, and only
the lines of a usage report are rounded (to cents, half up; ``cost_exact`` keeps the rest).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from cogplane.common.contracts.base import Contract, Empty, Rpc

UsageKind = Literal["setup", "idle", "processing"]
GroupBy = Literal["day", "model", "deployment", "hardware", "kind"]
DEFAULT_GROUPS: tuple[GroupBy, ...] = ("day",)


class IngestStatus(Contract):
    """How far billing has read the event stream."""

    events_recorded: int
    last_event_at: datetime | None = None


INGEST_STATUS = Rpc("billing.ingest.status", Empty, IngestStatus)


class UsageQuery(Contract):
    """Usage charged to ``account`` (a username: a user or an organization)."""

    account: str = Field(max_length=64)
    since: datetime
    until: datetime
    group_by: list[GroupBy] = Field(default_factory=lambda: list(DEFAULT_GROUPS), max_length=5)


class UsageLine(Contract):
    """One line of a usage report: the group's keys, seconds and cost."""

    day: str | None = None
    model: str | None = None
    deployment: str | None = None
    hardware: str | None = None
    kind: UsageKind | None = None
    seconds: str = Field(description="Billed seconds, exact to the millisecond.")
    cost: str = Field(description="US dollars, rounded half up to the cent.")
    cost_exact: str = Field(description="US dollars, unrounded.")


class UsageReport(Contract):
    account: str
    since: datetime
    until: datetime
    group_by: list[GroupBy]
    lines: list[UsageLine]
    total_seconds: str
    total_cost: str = Field(description="The sum of the rounded lines.")
    total_cost_exact: str


class PredictionCostQuery(Contract):
    prediction_ids: list[str] = Field(max_length=200)


class PredictionCosts(Contract):
    """The processing cost of each finished prediction billing knows (exact dollars)."""

    costs: dict[str, str]


class EstimateQuery(Contract):
    hardware: str = Field(max_length=64)
    min_instances: int = Field(ge=0, le=1000)
    max_instances: int = Field(ge=0, le=1000)


class Estimate(Contract):
    """What a deployment configuration costs when its instances are all online."""

    hardware: str
    price_per_second: str
    min_instances: int
    max_instances: int
    per_hour_at_min: str
    per_hour_at_max: str
    per_month_at_min: str
    per_month_at_max: str
    hours_per_month: int


class InstanceRef(Contract):
    instance_id: str = Field(max_length=64)


class InstanceUsage(Contract):
    """An instance's lifetime and its parts, as the ledger has them (milliseconds)."""

    instance_id: str
    account: str | None
    hardware: str
    charged: bool = Field(description="Whether its time is charged (dedicated instances).")
    setup_ms: int
    idle_ms: int
    processing_ms: int
    lifetime_ms: int | None = Field(description="From its first to its last transition.")
    ended: bool
    missing_seqs: list[int] = Field(description="Transitions never received (gaps).")
    cost: str


class InstanceUsageList(Contract):
    results: list[InstanceUsage]


class InstanceUsageQuery(Contract):
    instance_ids: list[str] | None = Field(default=None, max_length=1000)
    only_gaps: bool = False


USAGE = Rpc("billing.usage", UsageQuery, UsageReport)
PREDICTION_COSTS = Rpc("billing.predictions.costs", PredictionCostQuery, PredictionCosts)
ESTIMATE = Rpc("billing.estimate", EstimateQuery, Estimate)
INSTANCE_USAGE = Rpc("billing.instances", InstanceUsageQuery, InstanceUsageList)
