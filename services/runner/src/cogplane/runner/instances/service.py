"""The InstanceManager: this node's instances, started, fed, canceled and stopped on request."""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import httpx

from cogplane.common.bus import Bus
from cogplane.common.contracts.base import DELIVERY_PATH, OUTPUTS_BUCKET, output_object_name
from cogplane.common.contracts.instances import PREFETCH, StartInstance, StopInstance
from cogplane.common.contracts.predictions import Accepted, CancelOnInstance, RunPrediction
from cogplane.common.db import utcnow
from cogplane.common.errors import BadRequest, CogplaneError, Conflict, NotFound, Unauthenticated
from cogplane.runner.build.builder import Builder
from cogplane.runner.config import RunnerSettings
from cogplane.runner.instances import dispatch
from cogplane.runner.instances.capacity import Capacity
from cogplane.runner.instances.models import ACCEPTING, Instance, PredictionRun, Snapshot
from cogplane.runner.instances.outbox import Outbox
from cogplane.runner.instances.supervisor import Context, Supervisor, Timings
from cogplane.runner.instances.workdir import Workdirs

# Ids become paths and URL segments: keep them to plain characters.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# Ended instances are remembered (a call for one gets 409, not 404) up to this many.
REMEMBERED_ENDED = 1000


def _check_id(kind: str, value: str) -> None:
    if not _SAFE_ID.fullmatch(value):
        raise BadRequest(f"{kind} {value!r} must be 1-128 letters, digits, '_', '.' or '-'")


class InstanceManager:
    """Every instance of this node, by id."""

    def __init__(
        self, bus: Bus, builder: Builder, settings: RunnerSettings, capacity: Capacity
    ) -> None:
        self.node_id = settings.node_id
        self.capacity = capacity
        self.bus = bus
        self.public_url = settings.public_url.rstrip("/")
        self.output_max_bytes = settings.output_max_bytes
        self.outbox = Outbox(bus)
        self.logs = Path(settings.data_dir) / "instances"
        self.http = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=100))
        self.ctx = Context(
            builder=builder,
            workdirs=Workdirs(Path(settings.data_dir) / "versions"),
            http=self.http,
            timings=Timings.of(settings),
            release=capacity.release,
            upload_outputs=settings.upload_outputs,
        )
        self.supervisors: dict[str, Supervisor] = {}
        self._starting: set[asyncio.Task[None]] = set()

    def start(self, webhook_base: str) -> None:
        """Start reporting; Cog's webhooks are to be sent under ``webhook_base``."""
        self.ctx.webhook_base = webhook_base
        self.logs.mkdir(parents=True, exist_ok=True)
        self.outbox.start()

    async def stop(self, grace: float) -> None:
        """Stop every instance, letting predictions finish for up to ``grace`` seconds.

        Instances already stopping with a longer drain have their predictions canceled once the
        grace is over, and those that still do not stop are killed: the runner's shutdown never
        waits much longer than the grace.
        """
        timeout = min(grace, self.ctx.timings.drain_timeout)
        live = [s for s in self.supervisors.values() if s.instance.live]
        stops = {s.stop(drain=True, drain_timeout=timeout): s for s in live}
        if stops:
            _, late = await asyncio.wait(stops, timeout=timeout)
            await asyncio.gather(*(stops[task].cancel_all() for task in late))
            timings = self.ctx.timings
            _, late = await asyncio.wait(
                stops, timeout=timings.cancel_grace + 2 * timings.stop_timeout
            )
            await asyncio.gather(*(stops[task].kill() for task in late))
        await self.outbox.close(timeout=5.0)
        await self.http.aclose()

    def get(self, instance_id: str) -> Instance:
        """An instance this node runs or ran; NotFound otherwise."""
        return self._supervisor(instance_id).instance

    def _supervisor(self, instance_id: str) -> Supervisor:
        supervisor = self.supervisors.get(instance_id)
        if supervisor is None:
            raise NotFound(f"Instance {instance_id} is not on node {self.node_id}")
        return supervisor

    # -- calls --------------------------------------------------------------------------------

    async def start_instance(self, request: StartInstance) -> Accepted:
        """Reserve capacity, report ``booting``, and boot in the background."""
        _check_id("instance_id", request.instance_id)
        _check_id("version_id", request.version.version_id)
        known = self.supervisors.get(request.instance_id)
        if known is not None:
            if known.instance.live:
                return Accepted()  # a retried call: it is already starting or running
            raise Conflict(
                f"Instance {request.instance_id} already ran here ({known.instance.state})"
            )
        instance = Instance(
            request=request,
            node_id=self.node_id,
            placement=self.capacity.reserve(request.hardware),
            outbox=self.outbox,
            log_path=self.logs / f"{request.instance_id}.log",
        )
        supervisor = Supervisor(instance, self.ctx)
        self.supervisors[request.instance_id] = supervisor
        self._forget_old()
        instance.move("booting")
        booting = instance.reported
        assert booting is not None
        supervisor.start()
        await booting  # the scheduler hears of the instance before the call returns
        return Accepted()

    async def stop_instance(self, request: StopInstance) -> Accepted:
        """Drain (or cancel) and stop in the background."""
        supervisor = self._supervisor(request.instance_id)
        escalate = supervisor.stopping is not None and not request.drain
        supervisor.stop(request.drain)
        if escalate:
            await supervisor.cancel_all()
        return Accepted()

    async def run_prediction(self, request: RunPrediction) -> Accepted:
        """Answer once Cog has accepted the prediction; Conflict when it cannot take it now."""
        _check_id("prediction_id", request.prediction_id)
        supervisor = self._supervisor(request.instance_id)
        instance = supervisor.instance
        if request.prediction_id in instance.runs:
            return Accepted()  # already running here
        if instance.state not in ACCEPTING or supervisor.cog is None:
            raise Conflict(f"Instance {instance.instance_id} is {instance.state}")
        if instance.worker_crashed.is_set():  # failing right now: Cog would refuse it for good
            raise Conflict(f"Instance {instance.instance_id} lost its worker")
        if instance.busy >= instance.slots + PREFETCH:
            raise Conflict(f"Instance {instance.instance_id} has no free slot")
        if instance.full:  # every slot taken: it waits here and starts when one frees
            instance.waiting.append(instance.add_run(request.prediction_id, request.input))
            instance.on_slot_free = lambda run: self._start_waiting(supervisor, run)
            return Accepted()
        # Registered before Cog is called: its first webhooks can come before its answer.
        run = instance.add_run(request.prediction_id, request.input)
        try:
            await self._submit(supervisor, run)
        except BaseException:
            instance.end_run(run)
            raise
        return Accepted()

    async def _submit(self, supervisor: Supervisor, run: PredictionRun) -> None:
        assert supervisor.cog is not None
        await dispatch.submit(
            supervisor.cog,
            run.prediction_id,
            run.input,
            supervisor.webhook,
            self.ctx.timings.slot_retry,
        )

    def _start_waiting(self, supervisor: Supervisor, run: PredictionRun) -> None:
        """A slot freed: hand the oldest waiting prediction to Cog."""

        async def start() -> None:
            try:
                await self._submit(supervisor, run)
            except CogplaneError as exc:
                # Not started: if the instance is failing, the scheduler retries it when it
                # hears so; otherwise this is the prediction's end.
                if supervisor.instance.live and not supervisor.instance.worker_crashed.is_set():
                    run.started_at = run.started_at or utcnow()
                    update = run.abandon(f"Cog did not take the prediction: {exc.detail}")
                    supervisor.instance.end_run(run)
                    if update is not None:
                        self.outbox.put(update)

        task = asyncio.ensure_future(start())
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def cancel_prediction(self, request: CancelOnInstance) -> Accepted:
        """Ask Cog to cancel; its final webhook reports the outcome."""
        supervisor = self._supervisor(request.instance_id)
        waiting = next(
            (r for r in supervisor.instance.waiting if r.prediction_id == request.prediction_id),
            None,
        )
        if waiting is not None:  # never reached Cog: it ends here
            self.outbox.put(waiting.canceled_before_start())
            supervisor.instance.end_run(waiting)
            return Accepted()
        if supervisor.cog is not None and supervisor.instance.live:
            await supervisor.cog.cancel(request.prediction_id)
        return Accepted()

    # -- webhooks -----------------------------------------------------------------------------

    def on_snapshot(self, instance_id: str, token: str, snapshot: Snapshot) -> None:
        """Take one webhook from Cog (authenticated by the instance's own token)."""
        instance = self.get(instance_id)
        if not hmac.compare_digest(token.encode(), instance.token.encode()):
            raise Unauthenticated("Bad webhook token")
        instance.observe(snapshot)

    def check_upload(self, instance_id: str, token: str, prediction_id: str) -> PredictionRun:
        """The running prediction an output upload belongs to; raises when it is not ours."""
        instance = self.get(instance_id)
        if not hmac.compare_digest(token.encode(), instance.token.encode()):
            raise Unauthenticated("Bad upload token")
        run = instance.runs.get(prediction_id)
        if run is None or run.finished:
            raise NotFound(f"Prediction {prediction_id!r} is not running on {instance_id}")
        return run

    async def store_output(self, run: PredictionRun, filename: str, source: BinaryIO) -> str:
        """Store one output file of ``run``; the URL clients download it from."""
        token = secrets.token_urlsafe(18)
        name = output_object_name(run.prediction_id, token, filename)
        await self.bus.put_object(OUTPUTS_BUCKET, name, source)
        run.files.append(name)
        path = "/".join(quote(part, safe="") for part in name.split("/"))
        return f"{self.public_url}{DELIVERY_PATH}/{path}"

    def _forget_old(self) -> None:
        ended = [i for i, s in self.supervisors.items() if not s.instance.live]
        for instance_id in ended[: max(0, len(ended) - REMEMBERED_ENDED)]:
            del self.supervisors[instance_id]
