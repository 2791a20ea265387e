"""Instances: the scheduler asks a runner node to start and stop them; runners report states."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from cogplane.common.contracts.base import Contract, Event, Rpc
from cogplane.common.contracts.predictions import (
    Accepted,
    CancelOnInstance,
    RunPrediction,
    VersionSpec,
)

InstanceState = Literal[
    "pending", "booting", "setting_up", "idle", "processing", "draining", "stopped", "failed"
]
# Predictions a runner holds per instance beyond its slots, to start the moment a slot frees
# (the next one is already there, instead of a round trip through the scheduler).
PREFETCH = 1
LIVE_STATES: frozenset[str] = frozenset({"booting", "setting_up", "idle", "processing", "draining"})


class Ownership(Contract):
    """Whose an instance is, for billing: facts the runner repeats in every state it reports."""

    account: str | None = Field(
        default=None,
        description="Username of the account that owns the target: the deployment's owner, or "
        "the model's owner for a version's pool.",
    )
    model: str | None = Field(default=None, description="owner/name of the model it runs.")
    visibility: Literal["public", "private"] = "public"
    deployment: str | None = Field(default=None, description="owner/name, for a deployment.")


class StartInstance(Contract):
    instance_id: str
    target: str
    version: VersionSpec
    hardware: str = "cpu"
    ownership: Ownership = Field(default_factory=Ownership)


class StopInstance(Contract):
    instance_id: str
    drain: bool = Field(default=True, description="Finish running predictions first.")
    reason: str = ""


class InstanceStateChanged(Event):
    """An instance moved to ``state``; ``seq`` counts its transitions from 0 (gaps = lost events).

    ``at`` is wall-clock time from the runner; ``monotonic`` is the runner's monotonic clock in
    seconds, so durations between transitions of one instance are exact.
    """

    subject_suffix: ClassVar[str] = "instances.state"
    type: Literal["instance.state"] = "instance.state"
    instance_id: str
    node_id: str
    target: str
    version_id: str
    hardware: str
    state: InstanceState
    seq: int = Field(ge=0)
    at: datetime
    monotonic: float
    slots: int = 1
    busy: int = 0
    reason: str | None = None
    simulated: bool = False
    ownership: Ownership = Field(default_factory=Ownership)


class InstanceLost(Event):
    """The scheduler gave up on an instance whose runner stopped answering (it reports no more).

    ``at`` is when it was declared lost: its last state lasted until then, by the wall clock.
    """

    subject_suffix: ClassVar[str] = "instances.lost"
    type: Literal["instance.lost"] = "instance.lost"
    instance_id: str
    node_id: str
    target: str
    at: datetime
    reason: str


def runner_subject(node_id: str, rpc: Rpc[Any, Any]) -> str:
    """The request-reply subject of ``rpc`` on one runner node."""
    return f"cogplane.rpc.runner.{node_id}.{rpc.name}"


# Calls addressed to one runner node: pass subject=runner_subject(node_id, rpc.name) to the bus.
START_INSTANCE = Rpc("instances.start", StartInstance, Accepted)
STOP_INSTANCE = Rpc("instances.stop", StopInstance, Accepted)
RUN_PREDICTION = Rpc("predictions.run", RunPrediction, Accepted)
CANCEL_ON_INSTANCE = Rpc("predictions.cancel", CancelOnInstance, Accepted)
