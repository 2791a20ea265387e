"""An instance and the predictions running on it, as the runner tracks them in memory."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cogplane.common.contracts.instances import (
    LIVE_STATES,
    InstanceState,
    InstanceStateChanged,
    StartInstance,
)
from cogplane.common.contracts.predictions import TERMINAL, PredictionStatus, PredictionUpdated
from cogplane.common.db import utcnow
from cogplane.runner.instances.capacity import Placement
from cogplane.runner.instances.coglet import CogletProcess
from cogplane.runner.instances.outbox import Outbox

# The moves an instance may make; anything else (a late "idle" after "failed", say) is ignored.
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"booting"}),
    "booting": frozenset({"setting_up", "draining", "failed"}),
    "setting_up": frozenset({"idle", "draining", "failed"}),
    "idle": frozenset({"processing", "draining", "failed"}),
    "processing": frozenset({"idle", "draining", "failed"}),
    "draining": frozenset({"stopped", "failed"}),
}
ACCEPTING: frozenset[str] = frozenset({"idle", "processing"})
LOST = "The instance running this prediction stopped unexpectedly: {reason}"


class Snapshot(BaseModel):
    """What Cog posts to a webhook: the whole current state of one prediction."""

    model_config = ConfigDict(extra="ignore")

    id: str
    status: Literal["starting", "processing", "succeeded", "failed", "canceled"]
    output: Any = None
    logs: str | None = ""
    error: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)

    @property
    def our_status(self) -> PredictionStatus:
        """The platform's status: Cog's "starting" means it already holds a slot for it."""
        return "processing" if self.status == "starting" else self.status


@dataclass(eq=False)
class PredictionRun:
    """One attempt of a prediction on this instance; numbers its updates from 0."""

    prediction_id: str
    instance_id: str
    input: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    started_at: datetime | None = None
    finished: bool = False
    logs_seen: int = 0
    outputs_seen: int = 0
    files: list[str] = field(default_factory=list)

    def observe(self, snapshot: Snapshot) -> PredictionUpdated | None:
        """The update to report for ``snapshot``, or None when it is stale."""
        if self.finished:
            return None  # Cog's fire-and-forget updates can overtake the final one
        status = snapshot.our_status
        terminal = status in TERMINAL
        if not terminal and self._behind(snapshot):
            return None
        now = utcnow()
        self.started_at = self.started_at or now
        self.finished = terminal
        return self._update(
            status,
            output=snapshot.output,
            logs=snapshot.logs or "",
            error=snapshot.error,
            metrics=snapshot.metrics,
            completed_at=now if terminal else None,
        )

    def _behind(self, snapshot: Snapshot) -> bool:
        # Logs and outputs only grow; a snapshot with less than already reported is an older one.
        logs = len(snapshot.logs or "")
        outputs = len(snapshot.output) if isinstance(snapshot.output, list) else 0
        if logs < self.logs_seen or outputs < self.outputs_seen:
            return True
        self.logs_seen, self.outputs_seen = logs, outputs
        return False

    def canceled_before_start(self) -> PredictionUpdated:
        """The final update of a prediction canceled while it waited for a slot here."""
        self.finished = True
        return self._update("canceled", completed_at=utcnow())

    def abandon(self, error: str) -> PredictionUpdated | None:
        """The failed update for a prediction whose instance went away.

        None when it had ended, or had not started: Cog never ran it, so the scheduler decides
        (it retries such a prediction once when it learns the instance is gone).
        """
        if self.finished or self.started_at is None:
            return None
        self.finished = True
        return self._update("failed", error=error, completed_at=utcnow())

    def _update(self, status: PredictionStatus, **fields: Any) -> PredictionUpdated:
        update = PredictionUpdated(
            prediction_id=self.prediction_id,
            instance_id=self.instance_id,
            seq=self.seq,
            status=status,
            started_at=self.started_at,
            files=list(self.files),
            **fields,
        )
        self.seq += 1
        return update


WORKER_CRASHED = "Worker crashed"


@dataclass(eq=False)
class Instance:
    """One instance: its state (reported with gap-free ``seq``), its process and its predictions."""

    request: StartInstance
    node_id: str
    placement: Placement
    outbox: Outbox
    log_path: Path
    state: InstanceState = "pending"
    seq: int = 0
    reason: str | None = None
    process: CogletProcess | None = None
    runs: dict[str, PredictionRun] = field(default_factory=dict)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when Cog reports that the worker died: coglet then refuses everything (409) for good.
    worker_crashed: asyncio.Event = field(default_factory=asyncio.Event)
    # Runs accepted beyond the slots (prefetch), handed to Cog as slots free, oldest first.
    waiting: deque[PredictionRun] = field(default_factory=deque)
    on_slot_free: Callable[[PredictionRun], None] | None = None
    reported: asyncio.Future[None] | None = None

    def __post_init__(self) -> None:
        self.drained.set()

    @property
    def instance_id(self) -> str:
        """The scheduler's name of this instance."""
        return self.request.instance_id

    @property
    def slots(self) -> int:
        """How many predictions it runs at once."""
        return self.request.version.slots

    @property
    def busy(self) -> int:
        """How many predictions hold (or are about to take) one of its slots."""
        return len(self.runs)

    @property
    def live(self) -> bool:
        """Whether it is neither stopped nor failed."""
        return self.state in LIVE_STATES

    def move(self, state: InstanceState, reason: str | None = None) -> bool:
        """Enter ``state`` and report it; False (and nothing reported) if that is not a move.

        ``reported`` resolves once the report is stored.
        """
        if state not in TRANSITIONS.get(self.state, frozenset()):
            return False
        self.state, self.reason = state, reason
        self.reported = self.outbox.put(self._changed())
        self.seq += 1
        return True

    def _changed(self) -> InstanceStateChanged:
        version = self.request.version
        return InstanceStateChanged(
            instance_id=self.instance_id,
            node_id=self.node_id,
            target=self.request.target,
            version_id=version.version_id,
            hardware=self.placement.sku,
            state=self.state,
            seq=self.seq,
            at=utcnow(),
            monotonic=time.monotonic(),
            slots=self.slots,
            busy=self.busy,
            reason=self.reason,
            simulated=self.placement.simulated,
            ownership=self.request.ownership,
        )

    @property
    def full(self) -> bool:
        """Whether every Cog slot is taken (further runs wait here)."""
        return self.busy - len(self.waiting) >= self.slots

    def add_run(self, prediction_id: str, input: dict[str, Any] | None = None) -> PredictionRun:
        """Take a slot for a prediction (idle becomes processing)."""
        run = PredictionRun(prediction_id, self.instance_id, input or {})
        self.runs[prediction_id] = run
        self.drained.clear()
        if self.state == "idle":
            self.move("processing")
        return run

    def end_run(self, run: PredictionRun) -> None:
        """Free the prediction's slot (processing becomes idle when none is left)."""
        if self.runs.get(run.prediction_id) is not run:
            return
        del self.runs[run.prediction_id]
        if run in self.waiting:
            self.waiting.remove(run)
        elif self.waiting and self.on_slot_free is not None and self.live:
            self.on_slot_free(self.waiting.popleft())
        if not self.runs:
            self.drained.set()
            if self.state == "processing":
                self.move("idle")

    def observe(self, snapshot: Snapshot) -> None:
        """Report what Cog said about one of its predictions; a final word frees the slot."""
        run = self.runs.get(snapshot.id)
        if run is None:
            return  # an attempt that already ended (or was never ours)
        update = run.observe(snapshot)
        if update is not None:
            self.outbox.put(update)
        if run.finished:
            self.end_run(run)
            if snapshot.error == WORKER_CRASHED:
                self.worker_crashed.set()

    def abandon_runs(self, error: str) -> None:
        """Fail every prediction still in flight with ``error`` (its state is left alone)."""
        for run in self.runs.values():
            update = run.abandon(error)
            if update is not None:
                self.outbox.put(update)
        self.runs.clear()
        self.waiting.clear()
        self.drained.set()

    def fail(self, reason: str) -> None:
        """Report it failed, and every prediction it was running with it."""
        if not self.live:
            return
        self.abandon_runs(LOST.format(reason=reason))
        self.move("failed", reason)
