"""The life of one instance: prepare its version, start coglet, watch it, stop it.

A failure at any point (setup failed, setup too slow, coglet exited, worker crashed) fails the
instance and every prediction it was running; it is never restarted in place, because the
scheduler starts a replacement wherever capacity is free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from cogplane.common.embedded import free_port
from cogplane.common.errors import CogplaneError
from cogplane.runner.build.builder import Builder
from cogplane.runner.config import RunnerSettings
from cogplane.runner.instances.capacity import Placement
from cogplane.runner.instances.cog_client import CogClient, Health
from cogplane.runner.instances.coglet import CogletProcess, Launch
from cogplane.runner.instances.models import ACCEPTING, Instance
from cogplane.runner.instances.workdir import Workdirs

logger = logging.getLogger(__name__)
STOPPED_EARLY = "The instance was stopped before this prediction finished"


class InstanceFailed(Exception):
    """The instance cannot go on; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Timings:
    """How long to wait for what (from the runner's settings)."""

    setup_timeout: float
    drain_timeout: float
    cancel_grace: float
    stop_timeout: float
    setup_poll: float
    health_interval: float
    slot_retry: float

    @classmethod
    def of(cls, settings: RunnerSettings) -> Timings:
        """The timings configured in ``settings``."""
        return cls(
            setup_timeout=settings.setup_timeout.total_seconds(),
            drain_timeout=settings.drain_timeout.total_seconds(),
            cancel_grace=settings.cancel_grace.total_seconds(),
            stop_timeout=settings.stop_timeout.total_seconds(),
            setup_poll=settings.setup_poll_interval.total_seconds(),
            health_interval=settings.health_interval.total_seconds(),
            slot_retry=settings.slot_retry.total_seconds(),
        )


@dataclass
class Context:
    """What every supervisor shares."""

    builder: Builder
    workdirs: Workdirs
    http: httpx.AsyncClient
    timings: Timings
    release: Callable[[Placement], None]
    webhook_base: str = ""
    upload_outputs: bool = False


def tail(log: str, lines: int = 20) -> str:
    """The last ``lines`` lines of ``log``."""
    return "\n".join(log.strip().splitlines()[-lines:])


class Supervisor:
    """Runs one instance from boot to its end."""

    def __init__(self, instance: Instance, ctx: Context) -> None:
        self.instance = instance
        self.ctx = ctx
        self.cog: CogClient | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopping: asyncio.Task[None] | None = None
        self._released = False

    @property
    def webhook(self) -> str:
        """Where Cog reports this instance's predictions."""
        return f"{self.ctx.webhook_base}/instances/{self.instance.instance_id}/webhook"

    @property
    def upload_url(self) -> str | None:
        """Where Cog stores this instance's output files (None: it inlines them as data URLs)."""
        if not self.ctx.upload_outputs:
            return None
        instance = self.instance
        return f"{self.ctx.webhook_base}/instances/{instance.instance_id}/uploads/{instance.token}/"

    def start(self) -> None:
        """Boot in the background."""
        self.task = asyncio.create_task(self.run(), name=f"instance:{self.instance.instance_id}")

    async def run(self) -> None:
        """Boot, then watch until coglet fails (cancelled when the instance is stopped)."""
        try:
            cog = await self._boot()
            await self._watch(cog)
        except InstanceFailed as exc:
            self._fail(exc.reason)
        except CogplaneError as exc:  # the version could not be prepared on this node
            self._fail(exc.detail)
        except Exception as exc:
            logger.exception("instance %s failed", self.instance.instance_id)
            self._fail(f"The runner could not run this instance: {exc}")

    # -- boot ---------------------------------------------------------------------------------

    async def _boot(self) -> CogClient:
        instance, version = self.instance, self.instance.request.version
        prepared = await self.ctx.builder.prepare(
            version.source_object, version.source_digest, self._log
        )
        workdir = await self.ctx.workdirs.ensure(
            version.version_id, prepared.root, version.openapi_schema
        )
        launch = Launch(
            workdir=workdir,
            env_dir=prepared.env,
            predict=version.predict,
            slots=instance.slots,
            port=free_port(),
            webhook_token=instance.token,
            cuda_visible_devices=instance.placement.cuda_visible_devices,
            model_env=prepared.config.environment,
            log_path=instance.log_path,
            upload_url=self.upload_url,
        )
        instance.process = await CogletProcess.spawn(launch)
        instance.move("setting_up")
        self.cog = CogClient(self.ctx.http, launch.url)
        await self._until_ready(self.cog, instance.process)
        instance.move("idle")
        return self.cog

    async def _log(self, text: str) -> None:
        with self.instance.log_path.open("a", encoding="utf-8") as log:
            log.write(text)

    async def _until_ready(self, cog: CogClient, process: CogletProcess) -> None:
        timings = self.ctx.timings
        deadline = asyncio.get_running_loop().time() + timings.setup_timeout
        while True:
            health = await cog.health()
            if health is not None and self._set_up(health):
                return
            if await process.wait(timings.setup_poll):
                raise InstanceFailed(f"Cog {process.describe_exit()} during setup:\n{self._tail()}")
            if asyncio.get_running_loop().time() > deadline:
                raise InstanceFailed(f"Setup did not finish within {timings.setup_timeout:g}s")

    @staticmethod
    def _set_up(health: Health) -> bool:
        """Whether setup is over; raises when it is over and failed."""
        if health.status == "SETUP_FAILED":
            raise InstanceFailed(health.setup.logs or "Setup failed (Cog gave no logs)")
        if health.status == "UNHEALTHY":
            raise InstanceFailed(
                f"Cog reports the model unhealthy: {health.user_healthcheck_error}"
            )
        return health.status in ("READY", "BUSY")

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            return tail(self.instance.log_path.read_text(encoding="utf-8", errors="replace"))
        return ""

    # -- watch --------------------------------------------------------------------------------

    async def _watch(self, cog: CogClient) -> None:
        """Return never: a dead coglet, or one whose worker died (UNHEALTHY), fails the instance."""
        process = self.instance.process
        assert process is not None
        crashed = asyncio.ensure_future(self.instance.worker_crashed.wait())
        try:
            while not await self._wait(process, crashed):
                health = await cog.health()
                if health is not None and health.status == "UNHEALTHY":
                    reason = health.user_healthcheck_error or "no reason given"
                    raise InstanceFailed(f"Cog reports the model unhealthy: {reason}")
        finally:
            crashed.cancel()
        if crashed.done() and not crashed.cancelled():
            raise InstanceFailed("The model's worker crashed")
        raise InstanceFailed(f"Cog {process.describe_exit()}")

    async def _wait(self, process: CogletProcess, crashed: asyncio.Future[Any]) -> bool:
        """Whether to stop watching: coglet exited, or Cog said its worker crashed."""
        exited = asyncio.ensure_future(process.wait(self.ctx.timings.health_interval))
        done, _ = await asyncio.wait({exited, crashed}, return_when=asyncio.FIRST_COMPLETED)
        if crashed in done:
            exited.cancel()
            return True
        return bool(exited.result())

    def _fail(self, reason: str) -> None:
        logger.warning("instance %s failed: %s", self.instance.instance_id, reason)
        self.instance.fail(reason)
        if self.instance.process is not None:
            self.instance.process.signal_group(signal.SIGKILL)
        self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self.ctx.release(self.instance.placement)

    # -- stop ---------------------------------------------------------------------------------

    def stop(self, drain: bool, drain_timeout: float | None = None) -> asyncio.Task[None]:
        """Stop in the background, once: waiting for running predictions, or canceling them."""
        if self.stopping is None:
            timeout = self.ctx.timings.drain_timeout if drain_timeout is None else drain_timeout
            self.stopping = asyncio.create_task(self._stop(timeout if drain else 0.0))
        return self.stopping

    async def _stop(self, drain_timeout: float) -> None:
        instance = self.instance
        serving = instance.state in ACCEPTING
        if not instance.move("draining"):
            return
        if serving:
            await self._drain(drain_timeout)
        await self._end_supervision()
        if instance.state == "failed":
            return  # it crashed while draining, and said so
        await self._shut_down()
        instance.abandon_runs(STOPPED_EARLY)
        instance.move("stopped")
        self._release()

    async def _drain(self, timeout: float) -> None:
        drained = self.instance.drained
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(drained.wait(), timeout)
            return
        await self.cancel_all()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(drained.wait(), self.ctx.timings.cancel_grace)

    async def kill(self) -> None:
        """Stop at once, whatever is running: its predictions fail."""
        for task in (self.stopping, self.task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        process = self.instance.process
        if process is not None:
            process.signal_group(signal.SIGKILL)
            await process.exited
        self.instance.abandon_runs(STOPPED_EARLY)
        self.instance.move("stopped")
        self._release()

    async def cancel_all(self) -> None:
        """Ask Cog to cancel every prediction in flight."""
        if self.cog is not None:
            cog = self.cog
            await asyncio.gather(*(cog.cancel(pid) for pid in list(self.instance.runs)))

    async def _end_supervision(self) -> None:
        # From here on coglet exits because we asked it to: no longer a failure to report.
        if self.task is None:
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _shut_down(self) -> None:
        process = self.instance.process
        if process is None:
            return
        if self.cog is not None:
            await self.cog.shutdown()
        await process.wait(self.ctx.timings.stop_timeout)
        await process.terminate(self.ctx.timings.stop_timeout)
