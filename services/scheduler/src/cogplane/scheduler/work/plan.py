"""The scheduler's pure reconcile decision: which instances to start, drain or drop for a target.

The autoscaler decides how many instances of the target's current release it should have
(``desired``); this turns that number into actions, keeping three promises:

- scale-down drains: an instance chosen to stop takes no new work and finishes what it has;
  idle instances go first, and an instance still booting or setting up is never stopped
  (unless the target is deleted);
- a rollout never drops capacity: instances of an earlier release keep serving until enough
  instances of the current release are ready to replace them, one for one;
- instances that wait for capacity (``pending`` with no node) are simply dropped when no
  longer wanted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

READY = frozenset({"idle", "processing"})
STARTING = frozenset({"pending", "booting", "setting_up"})


@dataclass(frozen=True)
class Member:
    """A live instance of the target, as the scheduler knows it."""

    id: str
    state: str
    release: int
    busy: int
    state_since: datetime
    placed: bool = True  # False: pending, waiting for capacity on some runner


@dataclass(frozen=True)
class TargetPlan:
    """What to do now: start ``start`` instances, drain ``drain``, drop ``drop`` (unplaced)."""

    start: int = 0
    drain: list[tuple[str, str]] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)


def _victims(members: Sequence[Member], count: int) -> list[Member]:
    """Which ``count`` members to stop: unplaced first, then idle longest, then least busy.

    Instances still starting are never chosen: they may be needed in a moment, and stopping one
    wastes its setup.
    """
    unplaced = [m for m in members if not m.placed]
    idle = sorted(
        (m for m in members if m.placed and m.state == "idle" and m.busy == 0),
        key=lambda m: m.state_since,
    )
    busy = sorted(
        (m for m in members if m.placed and m.state in READY and m not in idle),
        key=lambda m: (m.busy, m.state_since),
    )
    return [*unplaced, *idle, *busy][: max(0, count)]


def plan(
    members: Sequence[Member],
    *,
    release: int,
    desired: int,
    min_instances: int,
    max_instances: int,
    deleted: bool = False,
) -> TargetPlan:
    """The actions that bring a target's instances to ``desired`` of release ``release``.

    Args:
        members: Live instances of the target that are not already stopping.
        release: The target's current release (0 for shared pools).
        desired: The autoscaler's latest decision; bounded by ``min`` and ``max`` here.
        min_instances: Instances kept even without work.
        max_instances: Most instances of the current release.
        deleted: The target is gone: everything stops.
    """
    if deleted:
        return TargetPlan(
            drain=[(m.id, "the deployment was deleted") for m in members if m.placed],
            drop=[m.id for m in members if not m.placed],
        )
    want = max(min_instances, min(desired, max_instances))
    current = [m for m in members if m.release == release]
    old = [m for m in members if m.release != release]
    start = max(0, want - len(current))
    excess = _victims(current, len(current) - want)
    drain = [(m.id, f"scaled down to {want}") for m in excess if m.placed]
    drop = [m.id for m in excess if not m.placed]
    # Rollout: each ready instance of the current release replaces one of an earlier release.
    ready = sum(1 for m in current if m.state in READY and m.placed and m not in excess)
    keep_old = max(0, min(len(old), want - ready))
    unplaced_old = [m for m in old if not m.placed]
    drop += [m.id for m in unplaced_old]
    serving_old = [m for m in old if m.placed and m.state in READY]
    starting_old = [m for m in old if m.placed and m.state in STARTING]
    # An instance of an earlier release that is still starting will never serve: stop it.
    drain += [(m.id, f"replaced by release {release}") for m in starting_old]
    retire = _victims(serving_old, len(serving_old) - keep_old)
    drain += [(m.id, f"replaced by release {release}") for m in retire]
    return TargetPlan(start=start, drain=drain, drop=drop)


def restart_delay(failures: Sequence[datetime], free_tries: int = 3) -> timedelta:
    """How long to wait before starting another instance of a release that keeps failing.

    The first ``free_tries`` failures are retried at once; then the wait doubles from 5 s up to
    5 minutes, counted from the latest failure (``failures`` is newest first).
    """
    extra = len(failures) - free_tries
    if extra < 0:
        return timedelta(0)
    return timedelta(seconds=min(300.0, 5.0 * 2**extra))
