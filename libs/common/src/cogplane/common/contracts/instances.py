"""Instances: the scheduler asks a runner node to start and stop them; runners report states."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from cogplane.common.contracts.base import Contract, Event
from cogplane.common.contracts.predictions import VersionSpec

InstanceState = Literal[
    "pending", "booting", "setting_up", "idle", "processing", "draining", "stopped", "failed"
]
LIVE_STATES: frozenset[str] = frozenset({"booting", "setting_up", "idle", "processing", "draining"})


class StartInstance(Contract):
    instance_id: str
    target: str
    version: VersionSpec
    hardware: str = "cpu"


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


def runner_subject(node_id: str, operation: str) -> str:
    """The request-reply subject of one runner node's operation."""
    return f"cogplane.rpc.runner.{node_id}.{operation}"
