"""Prediction and instance logic of the scheduler, inside one unit of work (no messaging here).

Methods return what the caller must do next (which runner to call), so that the decisions are
made here and the loops in ``consumers`` only carry them out after committing.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cogplane.common.contracts import predictions as p
from cogplane.common.contracts.instances import PREFETCH, InstanceStateChanged
from cogplane.common.contracts.models import Viewer
from cogplane.common.db import utcnow
from cogplane.common.errors import NotFound
from cogplane.common.pagination import decode_cursor, encode_cursor
from cogplane.scheduler.work.models import InstanceRow, PredictionRow
from cogplane.scheduler.work.placement import OpenInstance, assign
from cogplane.scheduler.work.repository import WorkRepository

GONE = ("stopped", "failed")


def new_prediction_id() -> str:
    """A random id in Replicate's style (26 lowercase base32 characters)."""
    return base64.b32encode(secrets.token_bytes(16)).decode().lower().rstrip("=")


def to_record(row: PredictionRow) -> p.PredictionRecord:
    """The contract view of a prediction."""
    return p.PredictionRecord.model_validate(row, from_attributes=True)


def finish(row: PredictionRow, status: str, error: str | None, now: datetime) -> None:
    row.status, row.error, row.completed_at = status, error, now
    metrics = dict(row.metrics or {})
    metrics["total_time"] = round((now - row.created_at).total_seconds(), 6)
    row.metrics = metrics


@dataclass
class InstanceChange:
    """What an instance's report changed: orphaned predictions, and what to do next."""

    orphans: list[PredictionRow] = field(default_factory=list)
    ready: bool = False  # it has just become ready: a rollout may retire an older instance
    gone: bool = False  # it stopped or failed: the target may need a replacement
    zombie: bool = False  # alive on its runner, but the scheduler gave up on it: stop it


class WorkService:
    """Operations on predictions, targets and instances."""

    def __init__(self, repo: WorkRepository) -> None:
        self.repo = repo

    # -- admission and queries -----------------------------------------------------------------

    async def submit(self, req: p.SubmitPrediction) -> PredictionRow:
        """Admit a prediction durably into its target's queue."""
        now = utcnow()
        spec = req.version
        placement = req.deployment
        if placement is None:
            target = spec.target
            await self.repo.ensure_target(target, spec.model_dump(mode="json"), now)
        else:
            target = placement.target
            await self.repo.ensure_deployment_target(placement, spec.model_dump(mode="json"), now)
        deadline = (
            now + timedelta(seconds=req.cancel_after_seconds) if req.cancel_after_seconds else None
        )
        row = PredictionRow(
            id=new_prediction_id(),
            owner_account_id=req.viewer.account_id,
            owner=req.viewer.username,
            model=f"{spec.owner}/{spec.name}",
            version=spec.version_id,
            target=target,
            deployment=placement.deployment if placement is not None else None,
            input=req.input,
            status="starting",
            source=req.source,
            created_at=now,
            logs="",
            metrics={},
            webhook=req.webhook,
            webhook_events_filter=list(req.webhook_events_filter),
            deadline=deadline,
            streaming=req.streaming,
            timings={},
        )
        await self.repo.add(row)
        return row

    async def visible(
        self, viewer: Viewer, prediction_id: str, *, lock: bool = False
    ) -> PredictionRow:
        """A prediction of the viewer's, or 404."""
        row = await self.repo.prediction(prediction_id, lock=lock)
        if row is None or row.owner_account_id != viewer.account_id:
            raise NotFound(f"Prediction {prediction_id} not found")
        return row

    async def page(self, req: p.ListPredictions) -> p.PredictionPage:
        """The viewer's predictions, newest first."""
        rows = await self.repo.page(
            req.viewer.account_id,
            decode_cursor(req.cursor),
            req.limit + 1,
            req.created_after,
            req.created_before,
            req.source,
        )
        page, more = rows[: req.limit], len(rows) > req.limit
        cursor = encode_cursor(page[-1].created_at, page[-1].id) if more else None
        return p.PredictionPage(results=[to_record(r) for r in page], next_cursor=cursor)

    async def cancel(self, viewer: Viewer, prediction_id: str) -> tuple[PredictionRow, str | None]:
        """Cancel: a queued prediction ends now; a running one is cancelled on its instance."""
        row = await self.visible(viewer, prediction_id, lock=True)
        if row.status in p.TERMINAL:
            return row, None
        if row.status == "starting":
            # Queued, or handed to an instance that has not started it: it ends now (the
            # instance is told, and its own report of the cancellation changes nothing).
            instance_id = row.instance_id
            finish(row, "canceled", None, utcnow())
            return row, instance_id
        return row, row.instance_id

    # -- dispatch ------------------------------------------------------------------------------

    async def claim(self, target: str) -> list[tuple[PredictionRow, InstanceRow]]:
        """Assign queued predictions to instances with free slots (FIFO), and return the pairs."""
        instances = {
            i.id: i
            for i in await self.repo.live_instances(target)
            if i.state in ("idle", "processing") and not i.stopping
        }
        if not instances:
            return []
        config = await self.repo.target(target)
        release = config.release if config is not None else 0
        busy = await self.repo.busy_by_instance(target)
        open_instances = [
            OpenInstance(
                i.id, i.slots + PREFETCH - busy.get(i.id, 0), preferred=i.release == release
            )
            for i in instances.values()
        ]
        capacity = sum(max(0, o.free_slots) for o in open_instances)
        if capacity == 0:
            return []
        queued = {row.id: row for row in await self.repo.queued(target, capacity)}
        now = utcnow()
        pairs = []
        for prediction_id, instance_id in assign(list(queued), open_instances):
            row = queued[prediction_id]
            row.instance_id, row.dispatched_at, row.attempts = instance_id, now, row.attempts + 1
            row.timings = {**row.timings, "queued_ms": _ms(row.created_at, now)}
            pairs.append((row, instances[instance_id]))
        return pairs

    async def release(self, prediction_id: str, instance_id: str) -> None:
        """Put a prediction its instance refused back at the head of the queue."""
        row = await self.repo.prediction(prediction_id, lock=True)
        if row is not None and row.instance_id == instance_id and row.status == "starting":
            # A dispatch the runner refused was not an attempt: it does not use up the retry.
            row.instance_id, row.dispatched_at, row.attempts = None, None, max(0, row.attempts - 1)

    # -- reports from runners ------------------------------------------------------------------

    async def record_update(self, event: p.PredictionUpdated) -> PredictionRow | None:
        """Apply what Cog reported; stale, duplicate or late updates change nothing."""
        row = await self.repo.prediction(event.prediction_id, lock=True)
        if row is None:
            return None
        if unknown := [name for name in event.files if name not in row.output_objects]:
            # Stored files are remembered even from a late update, so retention removes them.
            row.output_objects = [*row.output_objects, *unknown]
        if row.instance_id != event.instance_id or row.status in p.TERMINAL:
            return None
        if event.seq <= row.update_seq:
            return None
        row.update_seq = event.seq
        # Logs only grow, and an update about a lost instance carries none: keep what we have.
        if len(event.logs) >= len(row.logs or ""):
            row.logs = event.logs
        if event.output is not None:
            row.output = event.output
        if row.started_at is None and event.status != "starting":
            row.started_at = event.started_at or utcnow()
        if event.status in p.TERMINAL:
            finish(row, event.status, event.error, event.completed_at or utcnow())
            row.metrics = {**row.metrics, **event.metrics}
            row.timings = {**row.timings, **_hops(row, utcnow())}
        else:
            row.status = "processing"
        return row

    async def record_instance(self, event: InstanceStateChanged) -> InstanceChange:
        """Track an instance's state; when it is gone, requeue or fail what it was running.

        An instance the scheduler declared gone stays gone (see ``InstanceChange.zombie``).
        """
        row = await self.repo.instance(event.instance_id, lock=True)
        booting = row is None or row.state in ("pending", "booting", "setting_up")
        if row is not None and row.state in GONE:
            return InstanceChange(zombie=event.state not in GONE)
        if row is None:
            row = InstanceRow(
                id=event.instance_id,
                target=event.target,
                node_id=event.node_id,
                version_id=event.version_id,
                hardware=event.hardware,
                state=event.state,
                seq=event.seq,
                slots=event.slots,
                reason=event.reason,
                state_since=event.at,
            )
            await self.repo.add(row)
        elif event.seq > row.seq:
            row.state, row.seq, row.slots = event.state, event.seq, event.slots
            row.reason, row.state_since = event.reason, event.at
        else:
            return InstanceChange()
        if row.state not in GONE:
            return InstanceChange(ready=booting and row.state == "idle")
        orphans = await self._orphans(row)
        if row.state == "failed" and booting and not await self._served(row):
            orphans += await self._fail_queued(row)
        return InstanceChange(orphans=orphans, gone=True)

    async def _served(self, lost: InstanceRow) -> bool:
        """Whether another instance of the target can take its queued work."""
        return any(
            i.state in ("idle", "processing") and not i.stopping and i.id != lost.id
            for i in await self.repo.live_instances(lost.target)
        )

    async def lose_instance(
        self, row: InstanceRow, reason: str, now: datetime
    ) -> list[PredictionRow]:
        """Declare an instance failed without its runner's word; requeue or fail its work."""
        row.state, row.reason, row.state_since = "failed", reason, now
        return await self._orphans(row)

    async def _fail_queued(self, instance: InstanceRow) -> list[PredictionRow]:
        """The model cannot start: fail what waits for it, with the reason, instead of retrying."""
        reason = instance.reason or "its setup failed"
        now = utcnow()
        failed = []
        for row in await self.repo.queued(instance.target, 1000):
            finish(row, "failed", f"The model failed to start: {reason}", now)
            failed.append(row)
        return failed

    async def _orphans(self, instance: InstanceRow) -> list[PredictionRow]:
        changed = []
        now = utcnow()
        for row in await self.repo.on_instance(instance.id):
            if row.status == "starting":
                # Never started (it waited on the instance): it cannot have caused the loss, so
                # it goes back to the head of the queue without using up an attempt.
                row.instance_id, row.dispatched_at = None, None
                row.attempts = max(0, row.attempts - 1)
            else:
                reason = instance.reason or f"the instance {instance.state}"
                finish(
                    row, "failed", f"The instance running this prediction stopped: {reason}", now
                )
            changed.append(row)
        return changed

    async def expire(
        self, queue_timeout: timedelta, run_timeout: timedelta
    ) -> list[tuple[PredictionRow, str | None]]:
        """End predictions past their deadline or timeouts; running ones to cancel on instances."""
        now = utcnow()
        ended: list[tuple[PredictionRow, str | None]] = []
        for row in await self.repo.expired(now, now - queue_timeout, now - run_timeout):
            ended.append((row, row.instance_id))
            if row.instance_id is None and row.deadline is not None and row.deadline < now:
                finish(row, "canceled", "The deadline (Cancel-After) passed before it started", now)
            elif row.instance_id is None:
                waited = queue_timeout.total_seconds()
                finish(row, "failed", f"No instance took this prediction within {waited:.0f}s", now)
            elif row.started_at is not None and row.started_at < now - run_timeout:
                ran = run_timeout.total_seconds()
                finish(row, "failed", f"The prediction ran longer than {ran:.0f}s", now)
            else:
                finish(row, "canceled", "The deadline (Cancel-After) passed while it ran", now)
        return ended


def _hops(row: PredictionRow, recorded: datetime) -> dict[str, float]:
    """Where a finished prediction's time went, hop by hop, in milliseconds."""
    hops: dict[str, float] = {}
    if row.dispatched_at and row.started_at:
        hops["dispatch_to_start_ms"] = _ms(row.dispatched_at, row.started_at)
    if row.started_at and row.completed_at:
        hops["run_ms"] = _ms(row.started_at, row.completed_at)
    if row.completed_at:
        hops["report_ms"] = _ms(row.completed_at, recorded)
    return hops


def _ms(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() * 1000, 3)
