"""The thin loop around ``decide``: observe targets, ask the scheduler to act, log each decision."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cogplane.autoscaler.decide import ACTIVE, Policy, decide
from cogplane.autoscaler.models import DecisionRow
from cogplane.autoscaler.repository import DecisionRepository
from cogplane.common.contracts.base import Empty
from cogplane.common.contracts.scaling import LIST_TARGETS, SET_DESIRED, SetDesired, TargetChanged
from cogplane.common.db import utcnow
from cogplane.common.errors import CogplaneError
from cogplane.common.service import Runtime

logger = logging.getLogger(__name__)


class Autoscaler:
    """Looks at every target on each tick, and at once when one changes."""

    def __init__(self, rt: Runtime, policy: Policy, interval: float) -> None:
        self.rt = rt
        self.policy = policy
        self.interval = interval
        self._wake = asyncio.Event()
        self._served: set[str] = set()  # targets with an active instance at the last tick

    def on_change(self, notice: TargetChanged) -> None:
        """Work arrived on a target without instances: decide now, not at the next tick.

        Targets that already have instances are looked at on the regular tick; waking for every
        prediction of a busy target would spend the CPU the predictions need.
        """
        if notice.target not in self._served:
            self._wake.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.tick()
            except CogplaneError as exc:
                logger.warning("autoscaler tick skipped: %s", exc.detail)

    async def tick(self) -> None:
        """One round of decisions over every target."""
        states = await self.rt.bus.request(LIST_TARGETS, Empty())
        now = utcnow()
        served = set()
        for state in states.results:
            decision = decide(state, now, self.policy)
            active = sum(1 for i in state.instances if i.state in ACTIVE)
            if active and decision.desired:
                served.add(state.target)
            if decision.desired == state.desired and decision.desired == active:
                continue
            await self.rt.bus.request(
                SET_DESIRED,
                SetDesired(target=state.target, desired=decision.desired, reason=decision.reason),
            )
            async with self.rt.require_db().unit_of_work() as session:
                await DecisionRepository(session).add(
                    DecisionRow(
                        target=state.target,
                        current=active,
                        desired=decision.desired,
                        reason=decision.reason,
                        observed=state.model_dump(mode="json"),
                        decided_at=now,
                    )
                )
        self._served = served
