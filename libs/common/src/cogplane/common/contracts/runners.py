"""Runner nodes announce themselves and their hardware; the scheduler keeps the inventory."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from cogplane.common.contracts.base import Contract, Empty, Event, Rpc


class HardwareCapacity(Contract):
    """How many instances of one SKU a node can host."""

    sku: str
    slots: int = Field(ge=0)
    simulated: bool = False


class RunnerHeartbeat(Event):
    """A runner node is alive; sent at start and periodically."""

    subject_suffix: ClassVar[str] = "runners.heartbeat"
    type: Literal["runner.heartbeat"] = "runner.heartbeat"
    node_id: str
    hostname: str
    started_at: datetime
    capacity: list[HardwareCapacity]
    draining: bool = False


class RunnerStopped(Event):
    """A runner node stopped cleanly."""

    subject_suffix: ClassVar[str] = "runners.stopped"
    type: Literal["runner.stopped"] = "runner.stopped"
    node_id: str


class RunnerNode(Contract):
    """A runner node as the scheduler knows it."""

    node_id: str
    hostname: str
    started_at: datetime
    last_seen_at: datetime
    capacity: list[HardwareCapacity]
    draining: bool
    online: bool


class RunnerNodeList(Contract):
    results: list[RunnerNode]


LIST_RUNNERS = Rpc("scheduler.runners.list", Empty, RunnerNodeList)
