"""The autoscaler's pure decision: how many instances a target should have now, and why."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from cogplane.common.contracts.scaling import TargetState

ACTIVE = ("pending", "booting", "setting_up", "idle", "processing")


@dataclass(frozen=True)
class Policy:
    """How eagerly to scale."""

    idle_timeout: timedelta


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str


def decide(state: TargetState, now: datetime, policy: Policy) -> Decision:
    """Desired instances of a target: enough for its work within [min, max], none when idle long."""
    active = [i for i in state.instances if i.state in ACTIVE]
    slots = max((i.slots for i in active), default=1)
    work = state.queued + state.inflight
    if work:
        needed = min(state.max_instances, max(state.min_instances, math.ceil(work / slots)))
        desired = (
            max(len(active), needed) if len(active) <= state.max_instances else state.max_instances
        )
        if desired > len(active):
            return Decision(
                desired, f"{state.queued} queued and {state.inflight} running need {needed}"
            )
        return Decision(desired, "busy: keep the instances")
    quiet = now - state.last_activity_at
    if active and quiet >= policy.idle_timeout and all(i.state == "idle" for i in active):
        keep = state.min_instances
        return Decision(keep, f"idle for {quiet.total_seconds():.0f}s: scale to {keep}")
    return Decision(max(len(active), state.min_instances), "steady")
