"""The scheduler's work loops: admission calls, reports from runners, dispatch, timeouts, scaling.

Each handler commits its unit of work first, then talks to runners and broadcasts what changed,
so nothing is announced that a crash could take back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from cogplane.common.contracts import deployments as d
from cogplane.common.contracts import monitoring as m
from cogplane.common.contracts import predictions as p
from cogplane.common.contracts import scaling as s
from cogplane.common.contracts.events import parse_event
from cogplane.common.contracts.instances import (
    CANCEL_ON_INSTANCE,
    RUN_PREDICTION,
    STOP_INSTANCE,
    InstanceStateChanged,
    StopInstance,
    runner_subject,
)
from cogplane.common.errors import CogplaneError
from cogplane.common.service import Runtime
from cogplane.scheduler.config import SchedulerSettings
from cogplane.scheduler.work.fleet import Fleet
from cogplane.scheduler.work.models import InstanceRow, PredictionRow
from cogplane.scheduler.work.repository import WorkRepository
from cogplane.scheduler.work.service import WorkService, to_record

logger = logging.getLogger(__name__)
PREDICTION_UPDATES = "cogplane.events.predictions.updated"
INSTANCE_STATES = "cogplane.events.instances.state"
DEPLOYMENT_EVENTS = "cogplane.events.deployments.>"
RPCS = (
    p.SUBMIT_PREDICTION,
    p.GET_PREDICTION,
    p.LIST_PREDICTIONS,
    p.CANCEL_PREDICTION,
    s.LIST_TARGETS,
    s.SET_DESIRED,
    d.TARGET_ACTIVITY,
    m.LIST_INSTANCES,
    m.TARGET_STATS,
)


def finished(record: p.PredictionRecord) -> p.PredictionFinished:
    """The durable report of a prediction's end (its id makes a second report a duplicate)."""
    predict_time = record.metrics.get("predict_time")
    return p.PredictionFinished(
        id=f"finished-{record.id}",
        prediction_id=record.id,
        owner=record.owner,
        owner_account_id=record.owner_account_id,
        model=record.model,
        version=record.version,
        target=record.target,
        deployment=record.deployment,
        instance_id=record.instance_id,
        status=record.status,
        source=record.source,
        created_at=record.created_at,
        started_at=record.started_at,
        completed_at=record.completed_at,
        predict_time=float(predict_time) if isinstance(predict_time, int | float) else None,
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
        self.fleet = Fleet(rt, self.announce, self.poke)

    def service(self, session: object) -> WorkService:
        return WorkService(WorkRepository(session))  # type: ignore[arg-type]

    async def announce(self, rows: Iterable[PredictionRow]) -> None:
        """Tell waiters, streams and webhooks what changed (after the commit); report endings."""
        webhooks = self.rt.extras.get("webhooks")
        for row in rows:
            record = to_record(row)
            await self.rt.bus.broadcast(p.PredictionChanged(record=record))
            if webhooks is not None:
                webhooks.notice(record)  # never waits: sends run on their own
            if record.status in p.TERMINAL:
                await self.rt.bus.publish(finished(record))

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
            elif event.status in p.TERMINAL:
                # Already recorded: this may be the redelivery of an update whose handling
                # failed after its commit, so its end is reported again (the event id makes a
                # second report a duplicate for everyone).
                await self._report_end(event.prediction_id)
        elif isinstance(event, InstanceStateChanged):
            async with self.db.unit_of_work() as session:
                change = await self.service(session).record_instance(event)
            if change.zombie:
                await self._stop_zombie(event)
                return
            await self.announce(o for o in change.orphans if o.status in p.TERMINAL)
            if (change.ready or change.gone) and event.target.startswith(
                d.DEPLOYMENT_TARGET_PREFIX
            ):
                # A deployment replaces a lost instance at once (its min is a promise) and
                # retires an old release's instance as a new one gets ready. A shared pool
                # waits for the autoscaler, which starts one only if work is waiting.
                await self.fleet.reconcile(event.target)
            await self.poke(event.target)
        elif isinstance(event, d.DeploymentReleased):
            await self.fleet.on_release(event)
        elif isinstance(event, d.DeploymentDeleted):
            await self.fleet.on_deleted(event)

    async def _report_end(self, prediction_id: str) -> None:
        async with self.db.unit_of_work() as session:
            row = await WorkRepository(session).prediction(prediction_id)
        if row is not None and row.status in p.TERMINAL:
            await self.rt.bus.publish(finished(to_record(row)))

    async def _stop_zombie(self, event: InstanceStateChanged) -> None:
        logger.warning("stopping %s on %s: it was given up on", event.instance_id, event.node_id)
        request = StopInstance(instance_id=event.instance_id, drain=False, reason="given up on")
        with contextlib.suppress(CogplaneError):
            await self.rt.bus.request(
                STOP_INSTANCE, request, subject=runner_subject(event.node_id, STOP_INSTANCE)
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
    await rt.bus.serve(s.LIST_TARGETS, work.fleet.states)
    await rt.bus.serve(s.SET_DESIRED, work.fleet.set_desired)
    await rt.bus.serve(d.TARGET_ACTIVITY, work.fleet.activity)
    await rt.bus.serve(m.LIST_INSTANCES, work.fleet.instances)
    await rt.bus.serve(m.TARGET_STATS, work.fleet.stats)
    # One consumer for all: a runner reports a prediction's end before its instance's, and the
    # scheduler must see them in that order (else it fails the prediction with a vaguer reason).
    await rt.bus.consume(
        "scheduler-work", [PREDICTION_UPDATES, INSTANCE_STATES, DEPLOYMENT_EVENTS], work.on_event
    )
    rt.spawn(work.expire_forever(), "timeouts")
    rt.spawn(work.fleet.housekeep_forever(work.settings.housekeeping_interval), "housekeeping")
