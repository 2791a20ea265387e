"""The instances of every target: reconcile to the desired count, place, start, drain, replace.

``plan`` decides; this carries it out. Each reconcile commits its decisions (new instance rows,
instances marked as stopping) before it calls any runner, so a crash never leaves a runner
running something the scheduler does not know about for longer than one report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cogplane.common.contracts import deployments as d
from cogplane.common.contracts import monitoring as m
from cogplane.common.contracts import predictions as p
from cogplane.common.contracts import scaling as s
from cogplane.common.contracts.base import Empty, new_id
from cogplane.common.contracts.instances import (
    START_INSTANCE,
    STOP_INSTANCE,
    InstanceLost,
    Ownership,
    StartInstance,
    StopInstance,
    runner_subject,
)
from cogplane.common.db import utcnow
from cogplane.common.errors import CogplaneError
from cogplane.common.service import Runtime
from cogplane.scheduler.config import SchedulerSettings
from cogplane.scheduler.repository import RunnerRepository
from cogplane.scheduler.service import is_online
from cogplane.scheduler.work.models import InstanceRow, PredictionRow, TargetRow
from cogplane.scheduler.work.placement import (
    NodeOffer,
    choose_node,
    free_slots,
    no_capacity_reason,
)
from cogplane.scheduler.work.plan import Member, plan, restart_delay
from cogplane.scheduler.work.repository import PERCENTILES, WorkRepository
from cogplane.scheduler.work.service import WorkService, finish

logger = logging.getLogger(__name__)
DROPPED = "No longer needed before any runner had room for it"
# Failures of a release counted for the restart back-off.
CRASH_WINDOW = timedelta(minutes=10)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def limits(target: TargetRow, pool_max: int) -> tuple[int, int]:
    """The target's (min, max) instances: a deployment's release, or the pools' setting."""
    if target.kind == "deployment":
        return target.min_instances, target.max_instances or 0
    return 0, target.max_instances or pool_max


def ownership_of(target: TargetRow, spec: p.VersionSpec) -> Ownership:
    """Whose the target's instances are: the deployment's owner, or the model's."""
    model = f"{spec.owner}/{spec.name}"
    if target.kind == "deployment" and target.deployment:
        owner = target.deployment.split("/", 1)[0]
        return Ownership(
            account=owner, model=model, visibility=spec.visibility, deployment=target.deployment
        )
    return Ownership(account=spec.owner, model=model, visibility=spec.visibility)


def hardware_of(target: TargetRow) -> str:
    """The SKU the target's instances run on."""
    return target.hardware or p.VersionSpec.model_validate(target.version_spec).hardware


class Fleet:
    """Reconciles targets and keeps their instances placed and alive."""

    def __init__(
        self,
        rt: Runtime,
        announce: Callable[[list[PredictionRow]], Awaitable[None]],
        poke: Callable[[str], Awaitable[None]],
    ) -> None:
        self.rt = rt
        self.db = rt.require_db()
        settings = rt.settings
        assert isinstance(settings, SchedulerSettings)
        self.settings = settings
        self.announce = announce
        self.poke = poke
        self._locks: dict[str, asyncio.Lock] = {}

    # -- what the autoscaler sees and says -----------------------------------------------------

    async def states(self, _: Empty) -> s.TargetStates:
        """Every target worth a decision, in four queries whatever their number."""
        async with self.db.unit_of_work() as session:
            repo = WorkRepository(session)
            targets = await repo.active_targets()
            counts = await repo.open_counts()
            busy = await repo.busy_all()
            instances: dict[str, list[InstanceRow]] = {}
            for row in await repo.live_instances():
                instances.setdefault(row.target, []).append(row)
        results = []
        for target in targets:
            queued, inflight, oldest = counts.get(target.id, (0, 0, None))
            low, high = limits(target, self.settings.pool_max_instances)
            views = [
                s.InstanceView(
                    id=i.id,
                    state=i.state,
                    busy=busy.get(i.id, 0),
                    slots=i.slots,
                    state_since=i.state_since,
                    created_at=i.created_at,
                    release=i.release,
                )
                for i in instances.get(target.id, [])
                if not i.stopping and i.state != "draining"
            ]
            results.append(
                s.TargetState(
                    target=target.id,
                    kind="deployment" if target.kind == "deployment" else "version",
                    release=target.release,
                    queued=queued,
                    inflight=inflight,
                    oldest_queued_at=oldest,
                    last_activity_at=target.last_activity_at,
                    desired=target.desired,
                    instances=views,
                    min_instances=0 if target.deleted else low,
                    max_instances=0 if target.deleted else high,
                    slots=p.VersionSpec.model_validate(target.version_spec).slots,
                )
            )
        return s.TargetStates(results=results)

    async def set_desired(self, req: s.SetDesired) -> Empty:
        async with self.db.unit_of_work() as session:
            target = await WorkRepository(session).target(req.target, lock=True)
            if target is not None:
                target.desired, target.desired_reason = req.desired, req.reason
        await self.reconcile(req.target)
        return Empty()

    async def activity(self, req: d.TargetRef) -> d.TargetActivity:
        """Whether a target is in use (a deployment may only be deleted when it is not)."""
        async with self.db.unit_of_work() as session:
            repo = WorkRepository(session)
            queued, inflight, _ = await repo.counts(req.target)
            live = await repo.live_instances(req.target)
        return d.TargetActivity(instances_online=len(live), queued=queued, inflight=inflight)

    # -- monitoring ----------------------------------------------------------------------------

    async def instances(self, req: d.TargetRef) -> m.InstanceList:
        """The target's instances that have not stopped, oldest first."""
        async with self.db.unit_of_work() as session:
            repo = WorkRepository(session)
            rows = await repo.live_instances(req.target)
            busy = await repo.busy_by_instance(req.target)
        return m.InstanceList(
            results=[
                m.InstanceInfo(
                    id=i.id,
                    state=i.state,
                    state_since=i.state_since,
                    created_at=i.created_at,
                    release=i.release,
                    node_id=i.node_id,
                    hardware=i.hardware,
                    slots=i.slots,
                    busy=busy.get(i.id, 0),
                    stopping=i.stopping,
                    reason=i.reason,
                )
                for i in rows
            ]
        )

    async def stats(self, req: m.StatsQuery) -> m.TargetStats:
        """Predictions per step by outcome, with queue wait and predict time percentiles."""
        async with self.db.unit_of_work() as session:
            rows = await WorkRepository(session).stats(
                req.target, req.since, req.until, req.step_seconds
            )
        return m.TargetStats(
            results=[
                m.StatsBucket(
                    at=datetime.fromtimestamp(int(row["bucket"]) * req.step_seconds, tz=UTC),
                    created=row["created"],
                    succeeded=row["succeeded"],
                    failed=row["failed"],
                    canceled=row["canceled"],
                    queue_wait=m.Percentiles(
                        **{n: _round(row[f"wait_{n}"]) for n, _ in PERCENTILES}
                    ),
                    predict_time=m.Percentiles(
                        **{n: _round(row[f"predict_{n}"]) for n, _ in PERCENTILES}
                    ),
                )
                for row in rows
            ]
        )

    # -- deployments ---------------------------------------------------------------------------

    async def on_release(self, event: d.DeploymentReleased) -> None:
        """A deployment's new release: its target runs it from now on (rolling over)."""
        async with self.db.unit_of_work() as session:
            await WorkRepository(session).apply_release(
                target=event.target,
                deployment=f"{event.owner}/{event.name}",
                release=event.release,
                version_spec=event.version.model_dump(mode="json"),
                hardware=event.configuration.hardware,
                min_instances=event.configuration.min_instances,
                max_instances=event.configuration.max_instances,
                at=utcnow(),
            )
        await self.reconcile(event.target)
        await self.poke(event.target)

    async def on_deleted(self, event: d.DeploymentDeleted) -> None:
        """A deleted deployment: its instances stop, and work still queued there fails.

        The registry deletes only an unused deployment, but a prediction admitted in the moment
        between its check and the deletion would otherwise wait for nothing.
        """
        async with self.db.unit_of_work() as session:
            repo = WorkRepository(session)
            await repo.mark_deleted(event.target)
            stranded = await repo.queued(event.target, 10_000)
            now = utcnow()
            for row in stranded:
                finish(row, "failed", "The deployment was deleted before this prediction ran", now)
        await self.announce(stranded)
        await self.reconcile(event.target)

    # -- reconcile -----------------------------------------------------------------------------

    async def reconcile(self, target_id: str) -> None:
        """Start, drain or drop instances until the target matches its plan."""
        async with self._locks.setdefault(target_id, asyncio.Lock()):
            async with self.db.unit_of_work() as session:
                acts = await self._decide(session, target_id)
            if acts is None:
                return
            starts, stops, evict, spec, ownership = acts
            await asyncio.gather(*(self._start(row, spec, ownership) for row in starts))
            await asyncio.gather(*(self._stop(row, reason) for row, reason in stops))
            if evict is not None:  # room for a pending instance: it is placed when this stops
                await self._stop(evict, f"making room for {target_id}")

    async def _decide(
        self, session: AsyncSession, target_id: str
    ) -> (
        tuple[
            list[InstanceRow],
            list[tuple[InstanceRow, str]],
            InstanceRow | None,
            p.VersionSpec,
            Ownership,
        ]
        | None
    ):
        repo = WorkRepository(session)
        target = await repo.target(target_id, lock=True)
        if target is None:
            return None
        rows = {i.id: i for i in await repo.live_instances(target_id) if not i.stopping}
        busy = await repo.busy_by_instance(target_id)
        low, high = limits(target, self.settings.pool_max_instances)
        decision = plan(
            [
                Member(
                    i.id,
                    i.state,
                    i.release,
                    busy.get(i.id, 0),
                    i.state_since,
                    placed=bool(i.node_id),
                )
                for i in rows.values()
                if i.state != "draining"
            ],
            release=target.release,
            desired=target.desired,
            min_instances=low,
            max_instances=high,
            deleted=target.deleted,
        )
        now = utcnow()
        start = decision.start
        if start:
            failed = await repo.failures(target_id, target.release, now - CRASH_WINDOW)
            delay = restart_delay(failed)
            if delay and now < failed[0] + delay:
                logger.warning(
                    "%s: release %d failed %d times; next start in %.0fs",
                    target_id,
                    target.release,
                    len(failed),
                    (failed[0] + delay - now).total_seconds(),
                )
                start = 0
        for instance_id in decision.drop:
            row = rows[instance_id]
            row.state, row.reason, row.stopping, row.state_since = "stopped", DROPPED, True, now
        stops = []
        for instance_id, reason in decision.drain:
            row = rows[instance_id]
            row.stopping, row.reason = True, reason
            stops.append((row, reason))
        spec = p.VersionSpec.model_validate(target.version_spec)
        hardware = hardware_of(target)
        starts = []
        waiting = [
            i
            for i in rows.values()
            if not i.node_id and i.state == "pending" and i.id not in decision.drop
        ]
        for row in waiting:  # placed as soon as some runner has room
            node_id = await self._choose_node(session, hardware)
            if node_id is not None:
                row.node_id, row.reason = node_id, None
                starts.append(row)
        for _ in range(start):
            row = InstanceRow(
                id=new_id()[:32],
                target=target_id,
                node_id=await self._choose_node(session, hardware) or "",
                version_id=spec.version_id,
                hardware=hardware,
                state="pending",
                seq=-1,
                slots=spec.slots,
                state_since=now,
                release=target.release,
            )
            if row.node_id:
                starts.append(row)
            else:
                row.reason = no_capacity_reason(hardware)
                waiting.append(row)
            await repo.add(row)
        unplaced = any(not row.node_id for row in waiting if not row.stopping)
        evict = await self._evictable(repo, hardware, target_id) if unplaced else None
        if evict is not None:
            evict.stopping, evict.reason = True, f"making room for {target_id}"
        return starts, stops, evict, spec, ownership_of(target, spec)

    async def _choose_node(self, session: AsyncSession, hardware: str) -> str | None:
        """The online runner with the most room for ``hardware``, counting rows not yet sent."""
        repo = WorkRepository(session)
        used: dict[tuple[str, str], int] = {}
        for instance in await repo.live_instances():
            if instance.node_id:
                key = (instance.node_id, instance.hardware)
                used[key] = used.get(key, 0) + 1
        now = utcnow()
        offers = [
            NodeOffer(
                node.node_id,
                free_slots(node.capacity, hardware, used.get((node.node_id, hardware), 0)),
            )
            for node in await RunnerRepository(session).all()
            if is_online(node, now, self.settings.runner_offline_after) and not node.draining
        ]
        return choose_node(offers)

    async def _evictable(
        self, repo: WorkRepository, hardware: str, for_target: str
    ) -> InstanceRow | None:
        """The idle shared-pool instance on ``hardware`` idle the longest, with no work queued.

        Deployments' instances are dedicated: they are never evicted for someone else.
        """
        pools = {
            t.id for t in await repo.active_targets() if t.kind == "version" and t.id != for_target
        }
        counts = await repo.open_counts()
        candidates = [
            i
            for i in await repo.live_instances()
            if i.target in pools
            and i.hardware == hardware
            and i.state == "idle"
            and not i.stopping
            and counts.get(i.target, (0, 0, None))[:2] == (0, 0)
        ]
        return min(candidates, key=lambda i: i.state_since, default=None)

    async def _start(
        self, instance: InstanceRow, spec: p.VersionSpec, ownership: Ownership
    ) -> None:
        request = StartInstance(
            instance_id=instance.id,
            target=instance.target,
            version=spec,
            hardware=instance.hardware,
            ownership=ownership,
        )
        subject = runner_subject(instance.node_id, START_INSTANCE)
        try:
            await self.rt.bus.request(START_INSTANCE, request, subject=subject)
        except CogplaneError as exc:
            logger.warning("%s could not start %s: %s", instance.node_id, instance.id, exc.detail)
            async with self.db.unit_of_work() as session:
                row = await WorkRepository(session).instance(instance.id, lock=True)
                if row is not None and row.state == "pending":
                    row.state, row.reason = "failed", exc.detail

    async def _stop(self, instance: InstanceRow, reason: str) -> None:
        request = StopInstance(instance_id=instance.id, drain=True, reason=reason)
        with contextlib.suppress(CogplaneError):
            await self.rt.bus.request(
                STOP_INSTANCE, request, subject=runner_subject(instance.node_id, STOP_INSTANCE)
            )

    # -- housekeeping --------------------------------------------------------------------------

    async def housekeep(self) -> None:
        """Fail the instances of runners that went silent; place instances waiting for room."""
        lost_targets = await self._lose_silent_runners()
        async with self.db.unit_of_work() as session:
            waiting = await WorkRepository(session).unplaced_targets()
        for target in {*lost_targets, *waiting}:
            await self.reconcile(target)
            await self.poke(target)

    async def _lose_silent_runners(self) -> set[str]:
        now = utcnow()
        grace = self.settings.runner_offline_after
        async with self.db.unit_of_work() as session:
            nodes = await RunnerRepository(session).all()
            silent = [n.node_id for n in nodes if not is_online(n, now, grace)]
            if not silent:
                return set()
            service = WorkService(WorkRepository(session))
            lost = await WorkRepository(session).on_nodes(silent)
            orphans: list[PredictionRow] = []
            for row in lost:
                reason = f"its runner {row.node_id} stopped answering"
                orphans += await service.lose_instance(row, reason, now)
        if lost:
            logger.warning("runners %s are silent: %d instances lost", silent, len(lost))
        for row in lost:  # billing closes their time at this moment
            await self.rt.bus.publish(
                InstanceLost(
                    id=f"lost-{row.id}",
                    instance_id=row.id,
                    node_id=row.node_id,
                    target=row.target,
                    at=now,
                    reason=row.reason or "lost",
                )
            )
        await self.announce([o for o in orphans if o.status in p.TERMINAL])
        return {row.target for row in lost}

    async def housekeep_forever(self, interval: timedelta) -> None:
        """``housekeep`` every ``interval``."""
        while True:
            await asyncio.sleep(interval.total_seconds())
            try:
                await self.housekeep()
            except CogplaneError as exc:
                logger.warning("housekeeping skipped: %s", exc.detail)
