"""Predictions when things break: killed instances, crashing workers, failed setups, a restarted
scheduler; and instances that scale to zero and back, and deadlines. All real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import replicate
from typer.testing import CliRunner

from cogplane.cli.devstack import DevStack
from cogplane.cli.main import app
from cogplane.common.bus import Bus
from cogplane.common.contracts.base import Empty, Rpc
from cogplane.common.contracts.scaling import (
    LIST_DECISIONS,
    LIST_TARGETS,
    DecisionQuery,
    TargetState,
)

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).parents[2] / "examples"
TERMINAL = ("succeeded", "failed", "canceled")
IDLE_TIMEOUT = 20  # COGPLANE_AUTOSCALER_IDLE_TIMEOUT in conftest

CRASHING_PREDICTOR = '''
"""Kills its own worker process in the middle of a prediction."""

import os

from cog import BaseRunner, Input


class Predictor(BaseRunner):
    def run(self, code: int = Input(description="Exit status", default=1)) -> str:
        print("about to exit", flush=True)
        os._exit(code)
'''


def cli(stack: DevStack, *args: str) -> str:
    assert stack.token is not None
    env = {"COGPLANE_URL": stack.gateway_url, "COGPLANE_TOKEN": stack.token}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def push(stack: DevStack, prefix: str, project: Path) -> tuple[str, str]:
    """A new public model with one version of ``project``: (owner/name, version id)."""
    model = f"dev/{prefix}-{uuid.uuid4().hex[:6]}"
    cli(stack, "models", "create", model, "--visibility", "public")
    version = cli(stack, "push", model, "--path", str(project)).strip().splitlines()[-1]
    return model, version


_pushed: dict[tuple[str, str], tuple[str, str]] = {}


def pushed(stack: DevStack, example: str) -> tuple[str, str]:
    """A public model with one version of ``example``, pushed once per session."""
    key = (stack.gateway_url, example)
    if key not in _pushed:
        _pushed[key] = push(stack, example, EXAMPLES / example)
    return _pushed[key]


def client(stack: DevStack) -> replicate.Client:
    return replicate.Client(api_token=stack.token, base_url=stack.gateway_url)


def until(probe: Any, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout}s")


def prediction(stack: DevStack, prediction_id: str) -> dict[str, Any]:
    """The prediction as GET /v1/predictions/{id} shows it."""
    response = httpx.get(
        f"{stack.gateway_url}/v1/predictions/{prediction_id}",
        headers={"Authorization": f"Bearer {stack.token}"},
        timeout=10,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def finished(stack: DevStack, prediction_id: str, timeout: float) -> dict[str, Any]:
    """Poll until the prediction is terminal; return it."""
    last: dict[str, Any] = {}

    def probe() -> dict[str, Any] | None:
        nonlocal last
        last = prediction(stack, prediction_id)
        return last if last["status"] in TERMINAL else None

    try:
        done: dict[str, Any] = until(probe, timeout, f"prediction {prediction_id} finished")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {last}") from None
    return done


def create(stack: DevStack, version: str, input: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = httpx.post(
        f"{stack.gateway_url}/v1/predictions",
        headers={"Authorization": f"Bearer {stack.token}", **headers},
        json={"version": version, "input": input},
        timeout=70,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def call(stack: DevStack, rpc: Rpc[Any, Any], body: Any) -> Any:
    """One request over the platform's NATS bus, as a service would make it."""

    async def go() -> Any:
        bus = Bus(stack.nats.url, f"e2e-{uuid.uuid4().hex[:6]}", timedelta(seconds=10))
        await bus.connect()
        try:
            return await bus.request(rpc, body)
        finally:
            await bus.close()

    return asyncio.run(go())


def target_state(stack: DevStack, version: str) -> TargetState | None:
    """The scheduler's view of the version's pool (None: nothing live or open there)."""
    states = call(stack, LIST_TARGETS, Empty()).results
    return next((s for s in states if s.target == f"version:{version}"), None)


def coglet_pids(stack: DevStack, version: str) -> list[int]:
    """The coglet servers running ``version``: `python -m cog.server.http` in its workdir."""
    workdir = (stack.root / "runner" / "versions" / version).resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cwd == workdir and b"cog.server.http" in argv:
            found.append(int(entry.name))
    return found


def crashing_model(stack: DevStack, tmp_path: Path) -> tuple[str, str]:
    """A new model whose run() kills its worker (``os._exit``)."""
    project = tmp_path / "crash"
    project.mkdir()
    (project / "cog.yaml").write_text(
        'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\n'
    )
    (project / "predict.py").write_text(CRASHING_PREDICTOR)
    return push(stack, "crash", project)


def readyz(stack: DevStack, service: str) -> bool:
    try:
        return httpx.get(f"{stack.url(service)}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


# -- tests ---------------------------------------------------------------------------------------


def kill_while_running(stack: DevStack, version: str) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Start a long prediction, SIGKILL its coglet once it logs; (before, the end, the pid)."""
    running = create(stack, version, {"seconds": 20})
    until(lambda: prediction(stack, running["id"])["status"] == "processing", 60, "processing")
    before = until(
        lambda: (p := prediction(stack, running["id"]))["logs"] and p, 10, "a first log line"
    )
    pids = coglet_pids(stack, version)
    assert len(pids) == 1, pids
    killed_at = time.monotonic()
    os.kill(pids[0], signal.SIGKILL)
    failed = finished(stack, running["id"], 15)
    assert time.monotonic() - killed_at < 10
    return before, failed, pids[0]


def test_sigkill_of_the_instance_fails_the_running_prediction(stack: DevStack) -> None:
    model, version = pushed(stack, "slow")
    _before, failed, killed = kill_while_running(stack, version)
    assert failed["status"] == "failed"
    assert "instance running this prediction stopped" in failed["error"]
    assert "SIGKILL" in failed["error"]
    assert failed["started_at"] is not None
    assert failed["completed_at"] is not None

    again = client(stack).run(f"{model}:{version}", input={"seconds": 0.1})
    assert again.startswith("slept 0.1")
    serving = coglet_pids(stack, version)
    assert serving, "an instance serves the version again"
    assert killed not in serving, "a new instance served it"


def test_sigkill_keeps_the_logs_the_prediction_had_written(stack: DevStack) -> None:
    _model, version = pushed(stack, "slow")
    before, failed, _ = kill_while_running(stack, version)
    assert "tick 0" in before["logs"]
    assert failed["status"] == "failed"
    assert failed["logs"].startswith(before["logs"])


def test_a_crashing_worker_fails_its_prediction_and_others_still_run(
    stack: DevStack, tmp_path: Path
) -> None:
    _model, version = crashing_model(stack, tmp_path)

    crashed = finished(stack, create(stack, version, {"code": 1})["id"], 60)
    assert crashed["status"] == "failed"
    assert "crashed" in crashed["error"].lower(), crashed
    # (Its "about to exit" may or may not reach Cog before the worker dies: not asserted.)

    # Cog poisons the slot of a crashed worker: the next prediction must not wait on that
    # instance for ever. (It should run on a replacement and fail with "Worker crashed"; when it
    # is handed to the dying instance it may instead fail with the instance's own end - see the
    # report on PredictionRun.abandon - so only its ending, and a reason, are asserted.)
    again = finished(stack, create(stack, version, {"code": 2})["id"], 30)
    assert again["status"] == "failed"
    assert again["error"], again
    assert crashed["completed_at"] is not None

    hello_model, hello_version = pushed(stack, "hello")
    assert "ok" in client(stack).run(f"{hello_model}:{hello_version}", input={"name": "ok"})


def test_predictions_queued_behind_a_worker_crash_each_run_once(
    stack: DevStack, tmp_path: Path
) -> None:
    """Each of these crashes the worker it runs on; none may be failed without having run."""
    _model, version = crashing_model(stack, tmp_path)
    ids = [create(stack, version, {"code": 1})["id"] for _ in range(4)]
    ended = [finished(stack, i, 60) for i in ids]
    assert [e["status"] for e in ended] == ["failed"] * 4
    assert [e["error"] for e in ended] == ["Worker crashed"] * 4, [e["error"] for e in ended]


def test_a_failing_setup_fails_the_prediction_with_the_setup_error(stack: DevStack) -> None:
    _model, version = pushed(stack, "failing-setup")
    created = create(stack, version, {"prompt": "x"})
    try:
        failed = finished(stack, created["id"], 30)
    finally:  # a prediction left queued would keep the autoscaler starting instances
        httpx.post(
            created["urls"]["cancel"],
            headers={"Authorization": f"Bearer {stack.token}"},
            timeout=10,
        )
    assert failed["status"] == "failed"
    assert "weights not found" in failed["error"]


def test_queued_predictions_survive_a_scheduler_restart(stack: DevStack) -> None:
    _model, version = pushed(stack, "slow")
    ids = [create(stack, version, {"seconds": 2})["id"] for _ in range(3)]
    until(lambda: prediction(stack, ids[0])["status"] == "processing", 60, "the first running")
    assert [prediction(stack, i)["status"] for i in ids[1:]] == ["starting", "starting"]

    stack.stop_service("scheduler")
    stack.start_service("scheduler")
    until(lambda: readyz(stack, "scheduler"), 45, "the scheduler ready again")

    done = [finished(stack, i, 45) for i in ids]
    assert [d["status"] for d in done] == ["succeeded"] * 3, done
    for d in done:
        assert d["output"].startswith("slept 2")
        assert d["logs"].count("tick 0") == 1, d["logs"]  # ran exactly once
        assert d["logs"].count("tick 1") == 1, d["logs"]


def test_an_idle_instance_scales_to_zero_and_back(stack: DevStack) -> None:
    model, version = push(stack, "zero", EXAMPLES / "noop")
    rc = client(stack)
    assert rc.run(f"{model}:{version}", input={"value": "one"}) == "one"
    ran_at = time.monotonic()
    state = target_state(stack, version)
    assert state is not None
    assert len(state.instances) == 1

    def scaled_to_zero() -> bool:
        now = target_state(stack, version)
        return now is None or not now.instances

    until(scaled_to_zero, IDLE_TIMEOUT + 10, "no instances left")
    assert time.monotonic() - ran_at > IDLE_TIMEOUT / 2, "not stopped while still warm"
    decisions = call(stack, LIST_DECISIONS, DecisionQuery(target=f"version:{version}")).results
    idle = [d for d in decisions if "idle" in d.reason]
    assert idle, [d.reason for d in decisions]
    assert idle[0].desired == 0

    assert rc.run(f"{model}:{version}", input={"value": "two"}) == "two"


def test_cancel_after_cancels_a_running_prediction_at_its_deadline(stack: DevStack) -> None:
    model, version = pushed(stack, "slow")
    assert client(stack).run(f"{model}:{version}", input={"seconds": 0}).startswith("slept")
    created_at = time.monotonic()
    created = create(stack, version, {"seconds": 30}, **{"Cancel-After": "5s"})
    until(lambda: prediction(stack, created["id"])["status"] == "processing", 4, "processing")

    canceled = finished(stack, created["id"], 15)
    elapsed = time.monotonic() - created_at
    assert canceled["status"] == "canceled"
    assert 4.5 <= elapsed <= 9, elapsed
    assert canceled["started_at"] is not None
    assert "tick 0" in canceled["logs"]
