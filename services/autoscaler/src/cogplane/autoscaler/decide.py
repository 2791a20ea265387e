"""The autoscaler's pure decision: how many instances of its current release a target should have.

Inputs are what the scheduler observed (queued and running predictions, instances by state and
release, min and max) plus the recent history of what was needed. The rules:

- **Burst** (react now): when the backlog per slot exceeds ``target_per_slot``, ask for enough
  instances at once, up to ``max``.
- **Stable window** (scale down slowly): while there is work, shrink only to the most that was
  needed over the whole ``stable_window``, so a short lull does not drop instances that the next
  wave needs.
- **Scale to min** (zero, or kept warm): once nothing is queued or running and every instance
  has been idle for ``idle_timeout``. Never with work queued or in flight; never while an
  instance is still booting or setting up (it would waste its setup).
- **Rollout**: while instances of an earlier release serve, the current release gets as many,
  so the scheduler can retire them one for one without losing capacity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cogplane.common.contracts.scaling import InstanceView, TargetState

ACTIVE = ("pending", "booting", "setting_up", "idle", "processing")
# Instances whose setup would be wasted by stopping them ("pending" ones wait for capacity and
# have nothing to lose).
STARTING = ("booting", "setting_up")


@dataclass(frozen=True)
class Policy:
    """How eagerly to scale."""

    idle_timeout: timedelta
    stable_window: timedelta = timedelta(seconds=60)
    target_per_slot: float = 1.0


@dataclass(frozen=True)
class Sample:
    """How many instances the work needed at one moment."""

    at: datetime
    needed: int


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str
    recheck_at: datetime | None = None  # when the answer may change with nothing else happening


def needed(state: TargetState, policy: Policy) -> int:
    """Instances the current work needs: backlog over the work one instance should carry."""
    work = state.queued + state.inflight
    return math.ceil(work / (state.slots * policy.target_per_slot)) if work else 0


def _current(state: TargetState) -> list[InstanceView]:
    return [i for i in state.instances if i.state in ACTIVE and i.release == state.release]


def _older(state: TargetState) -> list[InstanceView]:
    return [i for i in state.instances if i.state in ACTIVE and i.release != state.release]


def decide(
    state: TargetState, now: datetime, policy: Policy, history: Sequence[Sample] = ()
) -> Decision:
    """Desired instances of the target's current release, with the reason.

    Args:
        state: The target as the scheduler sees it.
        now: The time of the observation.
        policy: The scaling policy.
        history: What was needed at earlier observations (oldest first), for the stable window.
    """
    low, high = state.min_instances, state.max_instances
    current, older = _current(state), _older(state)
    have = len(current)
    need = needed(state, policy)
    work = state.queued + state.inflight

    def bounded(n: int) -> int:
        return max(low, min(n, high))

    floor = min(len(older), high)  # a rollout replaces older instances one for one
    wanted = max(bounded(need), floor)
    if wanted > have:
        if floor > have and floor >= bounded(need):
            reason = f"rollout: {len(older)} instances of earlier releases to replace"
        elif need > have:
            reason = (
                f"burst: {state.queued} queued and {state.inflight} running need {need} "
                f"(at {policy.target_per_slot:g} per slot, {state.slots} slots per instance)"
            )
        else:
            reason = f"keep at least {low} instances warm"
        return Decision(wanted, reason + _capped(need, high))
    if have > high:
        return Decision(high, f"over the maximum of {high}")
    if work == 0:
        return _when_idle(state, current, now, policy, have, low)
    window_start = now - policy.stable_window
    covered = bool(history) and history[0].at <= window_start
    peak = max([need, *(s.needed for s in history if s.at >= window_start)])
    if covered and bounded(peak) < have:
        return Decision(
            bounded(peak),
            f"load fell: at most {peak} needed over the last "
            f"{policy.stable_window.total_seconds():g}s",
        )
    return Decision(have, "busy: keep the instances")


def _capped(need: int, high: int) -> str:
    return f", capped at the maximum of {high}" if need > high else ""


def _when_idle(
    state: TargetState,
    current: Sequence[InstanceView],
    now: datetime,
    policy: Policy,
    have: int,
    low: int,
) -> Decision:
    """No work at all: scale to ``min`` once every instance has been idle for the timeout."""
    if have <= low:
        return Decision(max(have, low), "steady")
    if any(i.state in STARTING for i in current):
        return Decision(have, "no work, but an instance is still starting")
    idle_since = max(
        [state.last_activity_at, *(i.state_since for i in current if i.state != "pending")]
    )
    due = idle_since + policy.idle_timeout
    if now >= due:
        quiet = (now - idle_since).total_seconds()
        return Decision(low, f"idle for {quiet:.1f}s: scale to {low}")
    return Decision(have, "idle, within the scale-down delay", recheck_at=due)
