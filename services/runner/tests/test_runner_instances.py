"""The runner's local instances: real NATS, real coglet, the runner app in-process.

A test plays the scheduler: it calls the node's instance subjects and reads the events the runner
publishes to JetStream.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import os
import signal
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from cogplane.common import archive
from cogplane.common.bus import Bus
from cogplane.common.contracts.base import (
    DELIVERY_PATH,
    OUTPUTS_BUCKET,
    SOURCES_BUCKET,
    Contract,
    Rpc,
)
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
from cogplane.common.contracts.models import BuildRequested
from cogplane.common.contracts.predictions import (
    TERMINAL,
    Accepted,
    CancelOnInstance,
    PredictionUpdated,
    RunPrediction,
    VersionSpec,
)
from cogplane.common.embedded import EmbeddedNats, free_port
from cogplane.common.errors import CogplaneError
from cogplane.common.testing.apps import running
from cogplane.common.testing.wait import eventually
from cogplane.runner.app import create_app
from cogplane.runner.build.builder import Builder
from cogplane.runner.config import RunnerSettings
from cogplane.runner.instances.service import InstanceManager

EXAMPLES = Path(__file__).parents[3] / "examples"
BUILT = ["hello", "stream", "concurrent", "slow", "raising", "failing-setup", "files"]
CRASHING = """
import os
from cog import BaseRunner

class Predictor(BaseRunner):
    def run(self, x: int = 1) -> int:
        print("about to crash")
        os._exit(1)
"""
SLOW_SETUP = """
import time
from cog import BaseRunner

class Predictor(BaseRunner):
    def setup(self) -> None:
        time.sleep(60)

    def run(self) -> str:
        return "never"
"""
STUBBORN = """
import time
from cog import BaseRunner

class Predictor(BaseRunner):
    def run(self, seconds: float = 60) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                time.sleep(0.05)
            except BaseException:  # ignores cancellation
                print("not stopping")
        return "done"
"""
COG_YAML = 'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\n'
Req = TypeVar("Req", bound=Contract)


class Events:
    """Every instance state change and prediction update the runner publishes, by id."""

    def __init__(self) -> None:
        self.states: dict[str, list[InstanceStateChanged]] = defaultdict(list)
        self.updates: dict[str, list[PredictionUpdated]] = defaultdict(list)

    async def on_state(self, msg: Msg) -> None:
        event = InstanceStateChanged.model_validate_json(msg.data)
        self.states[event.instance_id].append(event)

    async def on_update(self, msg: Msg) -> None:
        event = PredictionUpdated.model_validate_json(msg.data)
        self.updates[event.prediction_id].append(event)

    def names(self, instance_id: str) -> list[str]:
        return [e.state for e in self.states[instance_id]]

    async def reach(
        self, instance_id: str, state: str, timeout: float = 20
    ) -> InstanceStateChanged:
        async def probe() -> InstanceStateChanged | None:
            return next((e for e in self.states[instance_id] if e.state == state), None)

        return await eventually(probe, timeout=timeout, interval=0.01)

    async def ended(self, prediction_id: str, timeout: float = 20) -> PredictionUpdated:
        async def probe() -> PredictionUpdated | None:
            return next((u for u in self.updates[prediction_id] if u.status in TERMINAL), None)

        return await eventually(probe, timeout=timeout, interval=0.01)

    async def running(self, prediction_id: str, timeout: float = 20) -> PredictionUpdated:
        async def probe() -> PredictionUpdated | None:
            return next((u for u in self.updates[prediction_id] if u.status == "processing"), None)

        return await eventually(probe, timeout=timeout, interval=0.01)


class Node:
    """The runner under test, seen from the scheduler's side."""

    def __init__(self, app: FastAPI, bus: Bus, events: Events, versions: dict[str, VersionSpec]):
        self.app = app
        self.bus = bus
        self.events = events
        self.versions = versions

    @property
    def settings(self) -> RunnerSettings:
        settings = self.app.state.runtime.settings
        assert isinstance(settings, RunnerSettings)
        return settings

    @property
    def manager(self) -> InstanceManager:
        manager: InstanceManager = self.app.state.runtime.extras["instances"]
        return manager

    async def call(self, rpc: Rpc[Req, Accepted], body: Req) -> Accepted:
        subject = runner_subject(self.settings.node_id, rpc)
        return await self.bus.request(rpc, body, subject=subject, timeout=10)

    async def start(self, version: str, hardware: str = "cpu") -> str:
        spec = self.versions[version]
        instance_id = f"i-{version}-{uuid.uuid4().hex[:8]}"
        request = StartInstance(
            instance_id=instance_id, target=spec.target, version=spec, hardware=hardware
        )
        await self.call(START_INSTANCE, request)
        return instance_id

    async def run(self, instance_id: str, prediction_id: str, **input: Any) -> Accepted:
        request = RunPrediction(instance_id=instance_id, prediction_id=prediction_id, input=input)
        return await self.call(RUN_PREDICTION, request)

    async def stop(self, instance_id: str, *, drain: bool = True) -> None:
        await self.call(STOP_INSTANCE, StopInstance(instance_id=instance_id, drain=drain))

    @asynccontextmanager
    async def instance(self, version: str, hardware: str = "cpu") -> AsyncIterator[str]:
        """A started instance that has reached idle; stopped afterwards."""
        instance_id = await self.start(version, hardware)
        await self.events.reach(instance_id, "idle")
        try:
            yield instance_id
        finally:
            if self.manager.get(instance_id).live:
                await self.stop(instance_id, drain=False)
                await self.events.reach(instance_id, "stopped")


def prediction_id() -> str:
    return f"p-{uuid.uuid4().hex[:12]}"


async def build_versions(builder: Builder, bus: Bus, projects: dict[str, Path]) -> dict[str, Any]:
    versions = {}
    for name, project in projects.items():
        source = f"test-{name}-{uuid.uuid4().hex[:8]}"
        await bus.put_object(SOURCES_BUCKET, source, io.BytesIO(archive.pack(project)))
        request = BuildRequested(build_id=source, owner="tests", name=name, source_object=source)
        finished = await builder.build(request)
        assert finished.version is not None, finished.error
        built = finished.version.model_dump()
        versions[name] = VersionSpec(
            version_id=built.pop("id"), owner="tests", name=name, source_object=source, **built
        )
    return versions


@pytest.fixture(scope="module")
async def node(
    nats_server: EmbeddedNats, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Node]:
    settings = RunnerSettings(
        nats_url=nats_server.url,
        port=free_port(),
        data_dir=tmp_path_factory.mktemp("runner"),
        node_id=f"node-{uuid.uuid4().hex[:8]}",
        cpu_slots=3,
        simulated_gpus="gpu-t4:1",
        health_interval=timedelta(milliseconds=200),
        cancel_grace=timedelta(seconds=3),
        stop_timeout=timedelta(seconds=3),
        shutdown_grace=timedelta(seconds=5),
    )
    made = {}
    for name, code in (("crashing", CRASHING), ("slow-setup", SLOW_SETUP), ("stubborn", STUBBORN)):
        made[name] = tmp_path_factory.mktemp(name)
        (made[name] / "cog.yaml").write_text(COG_YAML)
        (made[name] / "predict.py").write_text(code)
    app = create_app(settings)
    async with running(app):
        bus = Bus(nats_server.url, "scheduler-tests", timedelta(seconds=10))
        await bus.connect()
        events = Events()
        for subject, handler in (
            ("cogplane.events.instances.state", events.on_state),
            ("cogplane.events.predictions.updated", events.on_update),
        ):
            await bus.js.subscribe(
                subject, cb=handler, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW
            )
        projects = {name: EXAMPLES / name for name in BUILT} | made
        builder: Builder = app.state.runtime.extras["builder"]
        versions = await build_versions(builder, bus, projects)
        yield Node(app, bus, events, versions)
        await bus.close()


async def expect_problem(status: int, call: Awaitable[object]) -> CogplaneError:
    with pytest.raises(CogplaneError) as caught:
        await call
    assert caught.value.status == status, caught.value.to_problem()
    return caught.value


async def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    async def probe() -> bool:
        return condition()

    await eventually(probe, timeout=timeout, interval=0.01)


def alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- booting and predicting ----------------------------------------------------------------------


async def test_hello_boots_to_idle_and_predicts(node: Node) -> None:
    started = time.monotonic()
    instance_id = await node.start("hello")
    idle = await node.events.reach(instance_id, "idle")
    print(f"hello: START call to idle event in {time.monotonic() - started:.3f}s")
    states = node.events.states[instance_id]
    assert [e.state for e in states] == ["booting", "setting_up", "idle"]
    assert [e.seq for e in states] == [0, 1, 2]
    assert states[0].monotonic < states[1].monotonic < states[2].monotonic
    print(f"hello: booting to idle {idle.monotonic - states[0].monotonic:.3f}s")
    version = node.versions["hello"]
    assert {(e.node_id, e.target, e.version_id, e.hardware) for e in states} == {
        (node.settings.node_id, version.target, version.version_id, "cpu")
    }
    assert all(e.slots == 1 and e.busy == 0 and not e.simulated for e in states)

    pid = prediction_id()
    assert (await node.run(instance_id, pid, name="cogplane")).accepted
    final = await node.events.ended(pid)
    assert final.status == "succeeded"
    assert final.output == "Hello, cogplane!"
    assert "greeting cogplane" in final.logs
    assert final.started_at is not None
    assert final.completed_at is not None
    assert final.started_at <= final.completed_at
    assert "predict_time" in final.metrics
    updates = node.events.updates[pid]
    assert [u.seq for u in updates] == list(range(len(updates)))
    assert updates[-1] is final  # nothing after the final word

    await node.events.reach(instance_id, "processing")
    await until(lambda: node.events.names(instance_id)[-1] == "idle")
    processing, back = node.events.states[instance_id][3:5]
    assert (processing.state, processing.busy, back.state, back.busy) == (
        "processing",
        1,
        "idle",
        0,
    )

    await node.stop(instance_id)
    stopped = await node.events.reach(instance_id, "stopped")
    states = node.events.states[instance_id]
    assert [e.state for e in states][-2:] == ["draining", "stopped"]
    assert [e.seq for e in states] == list(range(len(states)))
    assert stopped.reason is None
    process = node.manager.get(instance_id).process
    assert process is not None
    assert process.exited.done()


async def test_streaming_output_grows_until_the_final_update(node: Node) -> None:
    async with node.instance("stream") as instance_id:
        pid = prediction_id()
        await node.run(instance_id, pid, prompt="one two three four five", delay=0.1)
        final = await node.events.ended(pid)
    assert final.status == "succeeded"
    assert final.output == ["one ", "two ", "three ", "four ", "five "]
    running = [u for u in node.events.updates[pid] if u.status == "processing"]
    outputs = [u.output for u in running if u.output]
    assert len(outputs) >= 3, running
    assert all(len(a) <= len(b) for a, b in itertools.pairwise(outputs))
    assert all(out == final.output[: len(out)] for out in outputs)


async def test_concurrent_instance_runs_its_slots_at_once(node: Node) -> None:
    assert node.versions["concurrent"].slots == 4
    async with node.instance("concurrent") as instance_id:
        pids = [prediction_id() for _ in range(4)]
        started = time.monotonic()
        await asyncio.gather(*(node.run(instance_id, pid, seconds=1.0) for pid in pids))
        # One more waits on the runner for a slot (prefetch); the one after is refused.
        waiting = prediction_id()
        await node.run(instance_id, waiting, seconds=0)
        await expect_problem(409, node.run(instance_id, prediction_id(), seconds=0))
        finals = [await node.events.ended(pid) for pid in pids]
        elapsed = time.monotonic() - started
        assert (await node.events.ended(waiting)).status == "succeeded"
    assert {f.status for f in finals} == {"succeeded"}
    assert elapsed < 1.9, elapsed  # one after another would take 4 s
    last_start = max(f.started_at for f in finals if f.started_at)
    first_end = min(f.completed_at for f in finals if f.completed_at)
    assert last_start < first_end
    states = node.events.states[instance_id]
    assert max(e.busy for e in states) >= 1
    assert all(e.slots == 4 for e in states)


async def test_cancel_a_running_prediction(node: Node) -> None:
    async with node.instance("slow") as instance_id:
        pid = prediction_id()
        await node.run(instance_id, pid, seconds=30)
        await node.events.running(pid)
        await node.call(
            CANCEL_ON_INSTANCE, CancelOnInstance(instance_id=instance_id, prediction_id=pid)
        )
        final = await node.events.ended(pid, timeout=10)
        assert final.status == "canceled"
        await until(lambda: node.events.names(instance_id)[-1] == "idle")
        # Canceling what already ended is no error.
        await node.call(
            CANCEL_ON_INSTANCE, CancelOnInstance(instance_id=instance_id, prediction_id=pid)
        )


async def test_a_raising_model_fails_the_prediction_not_the_instance(node: Node) -> None:
    async with node.instance("raising") as instance_id:
        pid = prediction_id()
        await node.run(instance_id, pid, x=-1)
        final = await node.events.ended(pid)
        assert final.status == "failed"
        assert final.error is not None
        assert "x must be non-negative" in final.error
        assert "about to raise" in final.logs
        ok = prediction_id()
        await node.run(instance_id, ok, x=21)
        assert (await node.events.ended(ok)).output == 42


async def test_invalid_input_is_refused_with_cogs_reasons(node: Node) -> None:
    async with node.instance("raising") as instance_id:
        problem = await expect_problem(422, node.run(instance_id, prediction_id(), x="abc"))
        assert problem.extra["invalid_fields"][0]["field"] == "input.x"
        # The slot it briefly held is free again.
        await until(lambda: node.events.names(instance_id)[-1] == "idle")
        assert node.manager.get(instance_id).busy == 0


# -- failures ------------------------------------------------------------------------------------


async def test_failing_setup_fails_the_instance_with_the_setup_error(node: Node) -> None:
    instance_id = await node.start("failing-setup")
    failed = await node.events.reach(instance_id, "failed")
    assert node.events.names(instance_id) == ["booting", "setting_up", "failed"]
    assert failed.reason is not None
    assert "weights not found" in failed.reason
    process = node.manager.get(instance_id).process
    assert process is not None
    await until(lambda: not alive(process.pid))
    await expect_problem(409, node.run(instance_id, prediction_id()))


async def test_killed_coglet_fails_its_prediction_and_the_instance(node: Node) -> None:
    instance_id = await node.start("slow")
    await node.events.reach(instance_id, "idle")
    pid = prediction_id()
    await node.run(instance_id, pid, seconds=30)
    await node.events.running(pid)
    process = node.manager.get(instance_id).process
    assert process is not None
    os.kill(process.pid, signal.SIGKILL)
    final = await node.events.ended(pid)
    failed = await node.events.reach(instance_id, "failed")
    assert final.status == "failed"
    assert final.error is not None
    assert final.error.startswith("The instance running this prediction stopped unexpectedly")
    assert failed.reason == "Cog was killed by SIGKILL"
    await until(lambda: not alive(process.pid))  # its worker too


async def test_crashing_worker_fails_its_prediction_and_the_instance(node: Node) -> None:
    instance_id = await node.start("crashing")
    await node.events.reach(instance_id, "idle")
    pid = prediction_id()
    await node.run(instance_id, pid)
    final = await node.events.ended(pid)
    failed = await node.events.reach(instance_id, "failed", timeout=5)
    assert final.status == "failed"
    assert final.error is not None
    assert failed.reason is not None
    assert "worker crashed" in failed.reason  # seen in Cog's final webhook, before any health poll
    states = node.events.states[instance_id]
    assert [e.seq for e in states] == list(range(len(states)))


# -- stopping ------------------------------------------------------------------------------------


async def test_stop_with_drain_lets_the_running_prediction_finish(node: Node) -> None:
    instance_id = await node.start("slow")
    await node.events.reach(instance_id, "idle")
    pid = prediction_id()
    await node.run(instance_id, pid, seconds=1.5)
    await node.events.running(pid)
    await node.stop(instance_id, drain=True)
    await node.events.reach(instance_id, "draining")
    await expect_problem(409, node.run(instance_id, prediction_id(), seconds=0))
    stopped = await node.events.reach(instance_id, "stopped")
    final = node.events.updates[pid][-1]
    assert final.status == "succeeded"
    assert final.output == "slept 1.5"
    assert final.completed_at is not None
    assert final.completed_at <= stopped.at
    assert node.events.names(instance_id)[-3:] == ["processing", "draining", "stopped"]


async def test_stop_without_drain_cancels_the_running_prediction(node: Node) -> None:
    instance_id = await node.start("slow")
    await node.events.reach(instance_id, "idle")
    pid = prediction_id()
    await node.run(instance_id, pid, seconds=30)
    await node.events.running(pid)
    await node.stop(instance_id, drain=False)
    await node.events.reach(instance_id, "stopped", timeout=10)
    assert node.events.updates[pid][-1].status == "canceled"


async def test_calls_for_unknown_or_stopped_instances(node: Node) -> None:
    await expect_problem(404, node.run("no-such-instance", prediction_id()))
    await expect_problem(404, node.stop("no-such-instance"))
    async with node.instance("hello") as instance_id:
        pass
    problem = await expect_problem(409, node.run(instance_id, prediction_id()))
    assert "stopped" in problem.detail
    await node.stop(instance_id)  # stopping again is fine
    await expect_problem(400, node.run(instance_id, "../escape"))
    await expect_problem(409, node.call(START_INSTANCE, node.manager.get(instance_id).request))


async def test_webhooks_need_the_instances_token(node: Node) -> None:
    async with node.instance("hello") as instance_id:
        url = f"{node.manager.ctx.webhook_base}/instances/{instance_id}/webhook"
        body = {"id": "p-forged", "status": "succeeded", "output": "forged"}
        async with httpx.AsyncClient() as client:
            forged = await client.post(url, json=body, headers={"Authorization": "Bearer nope"})
            assert forged.status_code == 401
            unknown = await client.post(url.replace(instance_id, "nobody"), json=body)
            assert unknown.status_code == 404
            token = node.manager.get(instance_id).token
            ok = await client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200  # a prediction it does not run: ignored
    assert "p-forged" not in node.events.updates


def text_data_url(text: str) -> str:
    return "data:text/plain;base64," + base64.b64encode(text.encode()).decode()


async def test_file_outputs_are_data_urls_by_default(node: Node) -> None:
    assert not node.settings.upload_outputs  # http public URL: "auto" inlines them
    async with node.instance("files") as instance_id:
        pid = prediction_id()
        await node.run(instance_id, pid, file=text_data_url("inline me"))
        final = await node.events.ended(pid)
    assert final.status == "succeeded", final.error
    assert final.output.startswith("data:text/plain")
    assert base64.b64decode(final.output.split(",", 1)[1]) == b"INLINE ME"
    assert final.files == []


@asynccontextmanager
async def storing_outputs(node: Node) -> AsyncIterator[None]:
    """Instances started inside store their outputs (as ``file_outputs = "url"`` does)."""
    node.manager.ctx.upload_outputs = True
    try:
        yield
    finally:
        node.manager.ctx.upload_outputs = False


async def test_file_outputs_are_stored_and_returned_as_urls(node: Node) -> None:
    async with storing_outputs(node), node.instance("files") as instance_id:
        pid = prediction_id()
        await node.run(instance_id, pid, file=text_data_url("store me"))
        final = await node.events.ended(pid)
    assert final.status == "succeeded", final.error
    prefix = f"{node.settings.public_url}{DELIVERY_PATH}/"
    assert final.output.startswith(f"{prefix}{pid}/")
    assert final.output.endswith("/upper.txt")
    name = final.output.removeprefix(prefix)
    assert final.files == [name]
    stored = io.BytesIO()
    await node.bus.get_object(OUTPUTS_BUCKET, name, stored)
    assert stored.getvalue() == b"STORE ME"
    # Two predictions writing the same file name get different URLs.
    async with storing_outputs(node), node.instance("files") as instance_id:
        other = prediction_id()
        await node.run(instance_id, other, file=text_data_url("again"))
        second = await node.events.ended(other)
    assert second.output != final.output
    assert second.output.endswith("/upper.txt")


async def test_uploads_need_the_token_and_a_running_prediction(node: Node) -> None:
    async with storing_outputs(node), node.instance("slow") as instance_id:
        token = node.manager.get(instance_id).token
        base = f"{node.manager.ctx.webhook_base}/instances/{instance_id}/uploads"
        pid = prediction_id()
        await node.run(instance_id, pid, seconds=5)
        await node.events.running(pid)
        async with httpx.AsyncClient() as client:

            async def put(url: str, body: bytes = b"x", prediction: str = pid) -> httpx.Response:
                return await client.put(url, content=body, headers={"X-Prediction-ID": prediction})

            assert (await put(f"{base}/wrong-token/out.txt")).status_code == 401
            assert (await put(f"{base}/{token}/out.txt", prediction="p-other")).status_code == 404
            gone = await put(f"{base.replace(instance_id, 'nobody')}/{token}/out.txt")
            assert gone.status_code == 404
            bad_name = await put(f"{base}/{token}/..")
            assert bad_name.status_code in (400, 404)  # ".." never names a file
            control = await put(f"{base}/{token}/a%0Ab.txt")
            assert control.status_code == 400
            assert "plain file name" in control.json()["detail"]
            limit = node.manager.output_max_bytes
            node.manager.output_max_bytes = 10
            try:
                big = await put(f"{base}/{token}/big.bin", body=b"y" * 11)
            finally:
                node.manager.output_max_bytes = limit
            assert big.status_code == 413
            ok = await put(f"{base}/{token}/ok.txt", body=b"fine")
            assert ok.status_code == 201
            assert ok.headers["location"].endswith("/ok.txt")
        run = node.manager.get(instance_id).runs[pid]
        assert len(run.files) == 1  # only the accepted upload was stored
        await node.stop(instance_id, drain=False)


async def test_runner_shutdown_drains_its_instances(
    node: Node, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    other = other_node(
        node, nats_server, tmp_path, cpu_slots=1, shutdown_grace=timedelta(seconds=10)
    )
    async with running(other.app):
        # This node did not build the version: it fetches the source and makes the environment.
        instance_id = await other.start("slow")
        await node.events.reach(instance_id, "idle", timeout=60)
        pid = prediction_id()
        await other.run(instance_id, pid, seconds=1.5)
        await node.events.running(pid)
    # Leaving the block ran the runner's shutdown: it returned only once the instance stopped.
    stopped = await node.events.reach(instance_id, "stopped")
    final = await node.events.ended(pid)
    assert final.status == "succeeded"
    assert final.completed_at is not None
    assert final.completed_at <= stopped.at
    assert node.events.names(instance_id)[-2:] == ["draining", "stopped"]


def other_node(node: Node, nats_server: EmbeddedNats, data_dir: Path, **settings: Any) -> Node:
    """A second runner node (started by the caller) seen through the same bus and events."""
    app = create_app(
        RunnerSettings(
            nats_url=nats_server.url,
            port=free_port(),
            data_dir=data_dir,
            node_id=f"node-{uuid.uuid4().hex[:8]}",
            **settings,
        )
    )
    return Node(app, node.bus, node.events, node.versions)


async def test_setup_watchdog_fails_a_slow_setup(
    node: Node, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    other = other_node(node, nats_server, tmp_path, setup_timeout=timedelta(seconds=1))
    async with running(other.app):
        stuck = await other.start("slow-setup")
        failed = await node.events.reach(stuck, "failed", timeout=60)
    assert failed.reason == "Setup did not finish within 1s"
    assert node.events.names(stuck) == ["booting", "setting_up", "failed"]
    process = other.manager.get(stuck).process
    assert process is not None
    await until(lambda: not alive(process.pid))


async def test_shutdown_fails_what_ignores_cancellation(
    node: Node, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    other = other_node(
        node,
        nats_server,
        tmp_path,
        shutdown_grace=timedelta(seconds=1),
        cancel_grace=timedelta(seconds=0.5),
        stop_timeout=timedelta(seconds=0.5),
    )
    async with running(other.app):
        stubborn = await other.start("stubborn")
        await node.events.reach(stubborn, "idle", timeout=60)
        pid = prediction_id()
        await other.run(stubborn, pid)
        await node.events.running(pid)
        shutdown_started = time.monotonic()
    assert time.monotonic() - shutdown_started < 5
    final = await node.events.ended(pid)
    assert final.status == "failed"
    assert final.error == "The instance was stopped before this prediction finished"
    await node.events.reach(stubborn, "stopped")


# -- capacity ------------------------------------------------------------------------------------


async def test_capacity_is_reserved_per_sku(node: Node) -> None:
    async with node.instance("hello", hardware="gpu-t4") as gpu_instance:
        states = node.events.states[gpu_instance]
        assert all(e.simulated and e.hardware == "gpu-t4" for e in states)
        process = node.manager.get(gpu_instance).process
        assert process is not None
        environ = _environ(process.pid)
        assert environ["CUDA_VISIBLE_DEVICES"] == ""  # simulated: no real GPU for it
        assert environ["PATH"].startswith(str(node.settings.data_dir / "envs"))
        assert not [k for k in environ if k.startswith("COGPLANE_")]
        problem = await expect_problem(409, node.start("hello", hardware="gpu-t4"))
        assert problem.detail == f"no capacity for gpu-t4 on {node.settings.node_id}"
    await expect_problem(409, node.start("hello", hardware="gpu-h100"))

    # Freed by the stop; and a stop during boot is clean.
    booting = await node.start("hello", hardware="gpu-t4")
    await node.stop(booting)
    await node.events.reach(booting, "stopped")
    assert node.events.names(booting)[-2:] == ["draining", "stopped"]
    assert "idle" not in node.events.names(booting)
    await until(lambda: node.manager.capacity.free == {"cpu": 3, "gpu-t4": 1})


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode().partition("=") for item in raw if item)
    return {key: value for key, _, value in pairs}
