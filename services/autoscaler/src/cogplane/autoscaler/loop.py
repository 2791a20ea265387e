"""The thin loop around ``decide``: observe targets, ask the scheduler to act, log each decision.

A tick runs on a regular interval, at once when work arrives on a target (coalesced to at most
one tick per ``min_gap``), and exactly when a target's idle timeout falls due, so scaling to
zero happens on time rather than at the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from cogplane.autoscaler.decide import ACTIVE, Decision, Policy, Sample, decide, needed
from cogplane.autoscaler.leases import Leases
from cogplane.autoscaler.models import DecisionRow, SampleRow
from cogplane.autoscaler.repository import DecisionRepository
from cogplane.common.contracts.base import Empty, new_id
from cogplane.common.contracts.scaling import (
    LIST_TARGETS,
    SET_DESIRED,
    SetDesired,
    TargetChanged,
    TargetState,
)
from cogplane.common.db import utcnow
from cogplane.common.errors import CogplaneError
from cogplane.common.service import Runtime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    """When the loop runs."""

    interval: float
    min_gap: float = 0.05
    lease_ttl: timedelta = timedelta(seconds=3)
    sample_every: timedelta = timedelta(seconds=10)


class Autoscaler:
    """Decides for the targets this replica holds leases on."""

    def __init__(self, rt: Runtime, policy: Policy, timing: Timing) -> None:
        self.rt = rt
        self.policy = policy
        self.timing = timing
        self.holder = f"autoscaler-{new_id()[:12]}"
        self._wake = asyncio.Event()
        self._history: dict[str, deque[Sample]] = {}
        self._sampled: dict[str, datetime] = {}
        self._next_due: float | None = None
        self.owned: set[str] = set()
        self._saturated: set[str] = set()  # at their maximum at the last round
        self.ticks = 0

    def on_change(self, notice: TargetChanged) -> None:
        """Work moved on a target: decide soon (ticks are coalesced, see ``run``).

        A target already at its maximum cannot grow, and work arriving never shrinks it: its
        notices wait for the regular tick, so that a busy target does not spend on scaling
        rounds the CPU its predictions need.
        """
        if notice.target not in self._saturated:
            self._wake.set()

    async def run(self) -> None:
        last = 0.0
        while True:
            timeout = self.timing.interval
            if self._next_due is not None:
                timeout = max(0.0, min(timeout, self._next_due - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            gap = self.timing.min_gap - (time.monotonic() - last)
            if gap > 0:
                await asyncio.sleep(gap)
            self._wake.clear()
            last = time.monotonic()
            try:
                await self.tick()
            except CogplaneError as exc:
                logger.warning("autoscaler tick skipped: %s", exc.detail)
                # Nothing can be decided now (the scheduler or NATS is away): wait a round
                # rather than retrying at every coalesced wake-up.
                self._next_due = None
                await asyncio.sleep(self.timing.interval)

    async def tick(self) -> list[tuple[TargetState, Decision]]:
        """One round of decisions over the targets this replica owns; the decisions made."""
        states = await self.rt.bus.request(LIST_TARGETS, Empty())
        now = utcnow()
        async with self.rt.require_db().unit_of_work() as session:
            leases = Leases(session, self.holder)
            self.owned = await leases.acquire(
                [s.target for s in states.results], now, self.timing.lease_ttl
            )
        made: list[tuple[TargetState, Decision]] = []
        rows: list[DecisionRow | SampleRow] = []
        due: datetime | None = None
        saturated = set()
        for state in states.results:
            if state.target not in self.owned:
                self._history.pop(state.target, None)
                continue
            history = self._remember(state, now)
            decision = decide(state, now, self.policy, history)
            if decision.recheck_at is not None:
                due = min(due or decision.recheck_at, decision.recheck_at)
            rows += self._sample(state, decision, now)
            current = sum(
                1 for i in state.instances if i.state in ACTIVE and i.release == state.release
            )
            if decision.desired >= state.max_instances and current >= state.max_instances:
                saturated.add(state.target)
            if decision.desired == state.desired and decision.desired == current:
                continue
            await self.rt.bus.request(
                SET_DESIRED,
                SetDesired(target=state.target, desired=decision.desired, reason=decision.reason),
            )
            made.append((state, decision))
            if decision.desired != state.desired:
                rows.append(
                    DecisionRow(
                        target=state.target,
                        current=current,
                        desired=decision.desired,
                        reason=decision.reason,
                        observed=state.model_dump(mode="json"),
                        decided_at=now,
                    )
                )
        if rows:
            async with self.rt.require_db().unit_of_work() as session:
                await DecisionRepository(session).add_all(rows)
        self._saturated = saturated
        self._next_due = (
            time.monotonic() + max(0.0, (due - utcnow()).total_seconds()) if due else None
        )
        self.ticks += 1
        return made

    def _remember(self, state: TargetState, now: datetime) -> list[Sample]:
        """The target's recent needs, oldest first, trimmed to the stable window (plus one)."""
        history = self._history.setdefault(state.target, deque())
        start = now - self.policy.stable_window
        while len(history) > 1 and history[1].at <= start:
            history.popleft()
        samples = list(history)
        history.append(Sample(now, needed(state, self.policy)))
        return samples

    def _sample(self, state: TargetState, decision: Decision, now: datetime) -> list[SampleRow]:
        last = self._sampled.get(state.target)
        if last is not None and now - last < self.timing.sample_every:
            return []
        self._sampled[state.target] = now
        by_state: dict[str, int] = {}
        for instance in state.instances:
            by_state[instance.state] = by_state.get(instance.state, 0) + 1
        return [
            SampleRow(
                target=state.target,
                at=now,
                queued=state.queued,
                inflight=state.inflight,
                desired=decision.desired,
                instances=by_state,
            )
        ]

    async def release(self) -> None:
        """Hand every target over to the other replicas now."""
        async with self.rt.require_db().unit_of_work() as session:
            await Leases(session, self.holder).release_all()
