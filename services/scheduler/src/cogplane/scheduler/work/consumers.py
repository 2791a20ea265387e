"""The scheduler's work loops: admission calls, reports from runners, dispatch, timeouts, scaling.

Each handler commits its unit of work first, then talks to runners and broadcasts what changed,
so nothing is announced that a crash could take back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from cogplane.common.contracts import predictions as p
from cogplane.common.contracts import scaling as s
from cogplane.common.contracts.base import Empty, new_id
from cogplane.common.contracts.events import parse_event
from cogplane.common.contracts.instances import (
    CANCEL_ON_INSTANCE,
    RUN_PREDICTION,
    START_INSTANCE,
    STOP_INSTANCE,
    InstanceStateChanged,
    StartInstance,
    StopInstance,
    runner_subject,
)
from cogplane.common.db import utcnow
from cogplane.common.errors import CogplaneError
from cogplane.common.hardware import get_sku
from cogplane.common.service import Runtime
from cogplane.scheduler.config import SchedulerSettings
from cogplane.scheduler.repository import RunnerRepository
from cogplane.scheduler.service import is_online
from cogplane.scheduler.work.models import InstanceRow, PredictionRow
from cogplane.scheduler.work.placement import NodeOffer, choose_node
from cogplane.scheduler.work.repository import WorkRepository
from cogplane.scheduler.work.service import WorkService, to_record

logger = logging.getLogger(__name__)
PREDICTION_UPDATES = "cogplane.events.predictions.updated"
INSTANCE_STATES = "cogplane.events.instances.state"
RPCS = (
    p.SUBMIT_PREDICTION,
    p.GET_PREDICTION,
    p.LIST_PREDICTIONS,
    p.CANCEL_PREDICTION,
    s.LIST_TARGETS,
    s.SET_DESIRED,
)


class Work:
    """The scheduler's work loops around ``WorkService``."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.db = rt.require_db()
        settings = rt.settings
        assert isinstance(settings, SchedulerSettings)
        self.settings = settings
        self._locks: dict[str, asyncio.Lock] = {}

    def service(self, session: object) -> WorkService:
        return WorkService(WorkRepository(session))  # type: ignore[arg-type]

    async def announce(self, rows: Iterable[PredictionRow]) -> None:
        """Tell waiters, streams and webhooks what changed (after the commit)."""
        webhooks = self.rt.extras.get("webhooks")
        for row in rows:
            record = to_record(row)
            await self.rt.bus.broadcast(p.PredictionChanged(record=record))
            if webhooks is not None:
                webhooks.notice(record)  # never waits: sends run on their own

    async def poke(self, target: str) -> None:
        """Work moved on ``target``: dispatch, and let the autoscaler look again."""
        self.rt.spawn(self.dispatch(target), f"dispatch {target}")
        await self.rt.bus.broadcast(s.TargetChanged(target=target))

    # -- calls from the gateway ----------------------------------------------------------------

    async def submit(self, req: p.SubmitPrediction) -> p.PredictionRecord:
        async with self.db.unit_of_work() as session:
            row = await self.service(session).submit(req)
        await self.announce([row])
        await self.poke(row.target)
        return to_record(row)

    async def get(self, req: p.PredictionRef) -> p.PredictionRecord:
        async with self.db.unit_of_work() as session:
            return to_record(await self.service(session).visible(req.viewer, req.prediction_id))

    async def list(self, req: p.ListPredictions) -> p.PredictionPage:
        async with self.db.unit_of_work() as session:
            return await self.service(session).page(req)

    async def cancel(self, req: p.PredictionRef) -> p.PredictionRecord:
        async with self.db.unit_of_work() as session:
            row, instance_id = await self.service(session).cancel(req.viewer, req.prediction_id)
        if instance_id is not None:
            await self._cancel_on(instance_id, row.id)
        if row.status in p.TERMINAL:
            await self.announce([row])
            await self.poke(row.target)
        return to_record(row)

    async def _cancel_on(self, instance_id: str, prediction_id: str) -> None:
        async with self.db.unit_of_work() as session:
            instance = await WorkRepository(session).instance(instance_id)
        if instance is None:
            return
        request = p.CancelOnInstance(instance_id=instance_id, prediction_id=prediction_id)
        subject = runner_subject(instance.node_id, CANCEL_ON_INSTANCE)
        with contextlib.suppress(CogplaneError):
            await self.rt.bus.request(CANCEL_ON_INSTANCE, request, subject=subject)

    # -- dispatch ------------------------------------------------------------------------------

    async def dispatch(self, target: str) -> None:
        """Hand queued predictions of ``target`` to instances with free slots."""
        lock = self._locks.setdefault(target, asyncio.Lock())
        async with lock:
            async with self.db.unit_of_work() as session:
                pairs = await self.service(session).claim(target)
            results = await asyncio.gather(*(self._run(row, inst) for row, inst in pairs))
        if pairs and not all(results):
            await asyncio.sleep(0.2)  # an instance refused (slot not free yet): try again shortly
            self.rt.spawn(self.dispatch(target), f"dispatch {target}")

    async def _run(self, row: PredictionRow, instance: InstanceRow) -> bool:
        request = p.RunPrediction(
            instance_id=instance.id, prediction_id=row.id, input=row.input, deadline=row.deadline
        )
        subject = runner_subject(instance.node_id, RUN_PREDICTION)
        try:
            await self.rt.bus.request(RUN_PREDICTION, request, subject=subject)
        except CogplaneError as exc:
            logger.info("instance %s refused %s: %s", instance.id, row.id, exc.detail)
            async with self.db.unit_of_work() as session:
                await self.service(session).release(row.id, instance.id)
            return False
        return True

    # -- reports from runners ------------------------------------------------------------------

    async def on_event(self, data: bytes, _: dict[str, str]) -> None:
        event = parse_event(data)
        if isinstance(event, p.PredictionUpdated):
            async with self.db.unit_of_work() as session:
                row = await self.service(session).record_update(event)
            if row is not None:
                await self.announce([row])
                if row.status in p.TERMINAL:
                    await self.poke(row.target)
        elif isinstance(event, InstanceStateChanged):
            async with self.db.unit_of_work() as session:
                orphans = await self.service(session).record_instance(event)
            await self.announce(o for o in orphans if o.status in p.TERMINAL)
            await self.poke(event.target)

    # -- scaling -------------------------------------------------------------------------------

    async def targets(self, _: Empty) -> s.TargetStates:
        async with self.db.unit_of_work() as session:
            repo = WorkRepository(session)
            states = []
            for target in await repo.active_targets():
                queued, inflight, oldest = await repo.counts(target.id)
                busy = await repo.busy_by_instance(target.id)
                instances = [
                    s.InstanceView(
                        id=i.id,
                        state=i.state,
                        busy=busy.get(i.id, 0),
                        slots=i.slots,
                        state_since=i.state_since,
                        created_at=i.created_at,
                    )
                    for i in await repo.live_instances(target.id)
                ]
                states.append(
                    s.TargetState(
                        target=target.id,
                        queued=queued,
                        inflight=inflight,
                        oldest_queued_at=oldest,
                        last_activity_at=target.last_activity_at,
                        desired=target.desired,
                        instances=instances,
                        min_instances=0,
                        max_instances=self.settings.pool_max_instances,
                    )
                )
        return s.TargetStates(results=states)

    async def set_desired(self, req: s.SetDesired) -> Empty:
        async with self.db.unit_of_work() as session:
            target = await WorkRepository(session).target(req.target)
            if target is not None:
                target.desired, target.desired_reason = req.desired, req.reason
        await self.reconcile(req.target)
        return Empty()

    async def reconcile(self, target_id: str) -> None:
        """Start or drain instances until the target has as many as desired."""
        async with self._locks.setdefault(f"reconcile {target_id}", asyncio.Lock()):
            async with self.db.unit_of_work() as session:
                repo = WorkRepository(session)
                target = await repo.target(target_id)
                if target is None:
                    return
                live = [i for i in await repo.live_instances(target_id) if i.state != "draining"]
                busy = await repo.busy_by_instance(target_id)
                spec = p.VersionSpec.model_validate(target.version_spec)
                starts = [
                    await self._place(session, target_id, spec)
                    for _ in range(target.desired - len(live))
                ]
                idle = sorted(
                    (i for i in live if i.state == "idle" and not busy.get(i.id)),
                    key=lambda i: i.state_since,
                )
                stops = idle[: max(0, len(live) - target.desired)]
                evict = await self._evictable(repo, spec.hardware) if None in starts else None
            for instance in (i for i in starts if i is not None):
                await self._start(instance, spec)
            for instance in stops:
                await self._stop(instance, "scaled down")
            if evict is not None:  # make room; the next decision places the instance
                await self._stop(evict, f"making room for {target_id}")

    async def _evictable(self, repo: WorkRepository, hardware: str) -> InstanceRow | None:
        """The idle instance of another target, on ``hardware``, idle the longest (LRU)."""
        candidates = []
        for instance in await repo.live_instances():
            if instance.hardware != hardware or instance.state != "idle":
                continue
            queued, inflight, _ = await repo.counts(instance.target)
            if queued == 0 and inflight == 0:
                candidates.append(instance)
        return min(candidates, key=lambda i: i.state_since, default=None)

    async def _place(self, session: object, target: str, spec: p.VersionSpec) -> InstanceRow | None:
        repo = WorkRepository(session)  # type: ignore[arg-type]
        now = utcnow()
        offers = []
        used: dict[tuple[str, str], int] = {}
        for instance in await repo.live_instances():
            used[(instance.node_id, instance.hardware)] = (
                used.get((instance.node_id, instance.hardware), 0) + 1
            )
        sku = get_sku(spec.hardware)
        need = sku.gpu_count if sku is not None and sku.is_gpu else 1
        for node in await RunnerRepository(session).all():  # type: ignore[arg-type]
            if not is_online(node, now, self.settings.runner_offline_after) or node.draining:
                continue
            slots = sum(c["slots"] for c in node.capacity if c["sku"] == spec.hardware)
            offers.append(
                NodeOffer(node.node_id, slots - used.get((node.node_id, spec.hardware), 0) * need)
            )
        node_id = choose_node(offers)
        if node_id is None:
            logger.warning("no runner has %s free for %s", spec.hardware, target)
            return None
        row = InstanceRow(
            id=new_id()[:32],
            target=target,
            node_id=node_id,
            version_id=spec.version_id,
            hardware=spec.hardware,
            state="pending",
            seq=-1,
            slots=spec.slots,
            state_since=now,
        )
        await repo.add(row)
        return row

    async def _start(self, instance: InstanceRow, spec: p.VersionSpec) -> None:
        request = StartInstance(
            instance_id=instance.id, target=instance.target, version=spec, hardware=spec.hardware
        )
        try:
            await self.rt.bus.request(
                START_INSTANCE, request, subject=runner_subject(instance.node_id, START_INSTANCE)
            )
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

    # -- timeouts ------------------------------------------------------------------------------

    async def expire_forever(self) -> None:
        """End predictions past their deadlines and timeouts, once a second."""
        while True:
            await asyncio.sleep(1.0)
            try:
                async with self.db.unit_of_work() as session:
                    ended = await self.service(session).expire(
                        self.settings.queue_timeout, self.settings.run_timeout
                    )
                for row, instance_id in ended:
                    if instance_id is not None:
                        await self._cancel_on(instance_id, row.id)
                await self.announce(row for row, _ in ended)
            except CogplaneError as exc:
                logger.warning("timeouts not checked: %s", exc.detail)


async def register(rt: Runtime) -> None:
    """Serve the work calls and follow what runners report."""
    work = Work(rt)
    rt.extras["work"] = work
    await rt.bus.serve(p.SUBMIT_PREDICTION, work.submit)
    await rt.bus.serve(p.GET_PREDICTION, work.get)
    await rt.bus.serve(p.LIST_PREDICTIONS, work.list)
    await rt.bus.serve(p.CANCEL_PREDICTION, work.cancel)
    await rt.bus.serve(s.LIST_TARGETS, work.targets)
    await rt.bus.serve(s.SET_DESIRED, work.set_desired)
    # One consumer for both: a runner reports a prediction's end before its instance's, and the
    # scheduler must see them in that order (else it fails the prediction with a vaguer reason).
    await rt.bus.consume("scheduler-work", [PREDICTION_UPDATES, INSTANCE_STATES], work.on_event)
    rt.spawn(work.expire_forever(), "timeouts")
