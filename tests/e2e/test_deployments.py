"""Deployments end to end: a platform with two runner nodes and two autoscaler replicas.

Real services, real Cog instances, the official client. Scale from zero, burst to max and no
further, drain on scale-down, scale to zero, min kept warm, rollout under load, hardware
change, capacity exhausted, an instance and a whole runner killed, an autoscaler replica
killed. The scale-down delay is short here (``IDLE``) so that every test sees it happen.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import replicate
from typer.testing import CliRunner

from cogplane.cli.devstack import DEFAULT_PORTS, DevStack
from cogplane.cli.main import app
from cogplane.common.embedded import free_port
from cogplane.common.testing.metering import check_metering

pytestmark = pytest.mark.e2e
IDLE = 4.0
T = TypeVar("T")
VERSIONED = """
import time
from cog import BaseRunner, Input


class Predictor(BaseRunner):
    def run(self, seconds: float = Input(default=0, ge=0, le=60)) -> str:
        time.sleep(seconds)
        return "{tag}"
"""
COG_YAML = 'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\n'


class Fleet:
    """The platform under test and how to reach it."""

    def __init__(self, stack: DevStack, ports: dict[str, int]) -> None:
        self.stack = stack
        self.ports = ports
        assert stack.token is not None
        self.token = stack.token
        self.client = replicate.Client(api_token=stack.token, base_url=stack.gateway_url)
        self.http = httpx.Client(
            base_url=stack.gateway_url,
            headers={"Authorization": f"Bearer {stack.token}"},
            timeout=30,
        )

    def cli(self, *args: str) -> str:
        env = {"COGPLANE_URL": self.stack.gateway_url, "COGPLANE_TOKEN": self.token}
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    def push(self, model: str, project: Path) -> str:
        return self.cli("push", model, "--path", str(project)).strip().splitlines()[-1]

    def instances(self, deployment: str) -> list[dict[str, Any]]:
        response = self.http.get(f"/v1/deployments/{deployment}/instances")
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    def decisions(self, deployment: str) -> list[dict[str, Any]]:
        response = self.http.get(f"/v1/deployments/{deployment}/decisions")
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results


def until(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    ports = {name: free_port() for name in DEFAULT_PORTS}
    ports |= {"runner-b": free_port(), "autoscaler-b": free_port()}
    root = tmp_path_factory.mktemp("deployments") / ".cogplane"
    stack = DevStack(
        root,
        ports=ports,
        durable=False,
        extra_env={
            "COGPLANE_RUNNER_NODE_ID": "node-a",
            "COGPLANE_RUNNER_CPU_SLOTS": "4",
            "COGPLANE_RUNNER_SIMULATED_GPUS": "gpu-t4:1",
            "COGPLANE_RUNNER_HEARTBEAT_INTERVAL": "0.5",
            "COGPLANE_SCHEDULER_RUNNER_OFFLINE_AFTER": "3",
            "COGPLANE_AUTOSCALER_IDLE_TIMEOUT": str(IDLE),
            "COGPLANE_AUTOSCALER_STABLE_WINDOW": "3",
            "COGPLANE_AUTOSCALER_TICK_INTERVAL": "0.25",
            "COGPLANE_AUTOSCALER_LEASE_TTL": "2",
            "COGPLANE_AUTOSCALER_SAMPLE_INTERVAL": "1",
            "COGPLANE_CONNECT_RETRY_MAX": "1",
        },
    )
    stack.start()
    try:
        stack.start_process(
            "runner-b",
            "cogplane.runner",
            {
                "COGPLANE_RUNNER_NODE_ID": "node-b",
                "COGPLANE_RUNNER_PORT": str(ports["runner-b"]),
                "COGPLANE_RUNNER_DATA_DIR": str(root / "runner-b"),
                "COGPLANE_RUNNER_CPU_SLOTS": "2",
                "COGPLANE_RUNNER_SIMULATED_GPUS": "gpu-t4:2,gpu-a40-large:1",
            },
        )
        stack.start_process(
            "autoscaler-b",
            "cogplane.autoscaler",
            {"COGPLANE_AUTOSCALER_PORT": str(ports["autoscaler-b"])},
        )
        for extra in ("runner-b", "autoscaler-b"):
            url = f"http://127.0.0.1:{ports[extra]}"
            until(lambda url=url: ready(url), 60, f"{extra} ready")  # type: ignore[misc]
        yield Fleet(stack, ports)
        # Every instance here, killed and lost ones included, is metered exactly.
        checked = asyncio.run(check_metering(stack.nats.url))
        assert sum(1 for u in checked if u.ended) >= 10
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def model(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A private model with two versions that answer "v1" and "v2": (model, v1, v2)."""
    name = f"dev/versioned-{uuid.uuid4().hex[:6]}"
    fleet.cli("models", "create", name, "--visibility", "private")
    versions = []
    for tag in ("v1", "v2"):
        project = tmp_path_factory.mktemp(tag)
        (project / "cog.yaml").write_text(COG_YAML)
        (project / "predict.py").write_text(VERSIONED.format(tag=tag))
        versions.append(fleet.push(name, project))
    return name, versions[0], versions[1]


def deploy(
    fleet: Fleet, model: str, version: str, *, hardware: str = "cpu", low: int = 0, high: int = 2
) -> str:
    """A new deployment; its owner/name."""
    name = f"dep-{uuid.uuid4().hex[:8]}"
    created = fleet.client.deployments.create(
        name=name,
        model=model,
        version=version,
        hardware=hardware,
        min_instances=low,
        max_instances=high,
    )
    assert created.current_release is not None
    assert created.current_release.number == 1
    return f"{created.owner}/{created.name}"


def run(fleet: Fleet, deployment: str, seconds: float = 0) -> Any:
    prediction = fleet.client.deployments.predictions.create(deployment, input={"seconds": seconds})
    return prediction


def finish(prediction: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while prediction.status not in ("succeeded", "failed", "canceled"):
        assert time.monotonic() < deadline, f"{prediction.id} still {prediction.status}"
        time.sleep(0.1)
        prediction.reload()
    return prediction


def live(fleet: Fleet, deployment: str, **match: Any) -> list[dict[str, Any]]:
    return [
        i
        for i in fleet.instances(deployment)
        if all(i[key] == value for key, value in match.items())
    ]


def retire(fleet: Fleet, deployment: str) -> None:
    """Scale to zero and delete (a deployment with instances cannot be deleted)."""
    owner, name = deployment.split("/")
    fleet.client.deployments.update(owner, name, min_instances=0)
    until(lambda: not fleet.instances(deployment), 60, f"{deployment} at zero")
    response = fleet.http.delete(f"/v1/deployments/{deployment}")
    assert response.status_code == 204, response.text


# -- scaling ----------------------------------------------------------------------------------


def test_scale_from_zero_then_back_to_zero(fleet: Fleet, model: tuple[str, str, str]) -> None:
    name, v1, _ = model
    deployment = deploy(fleet, name, v1)
    assert fleet.instances(deployment) == []  # min 0: nothing runs yet
    started = time.monotonic()
    done = finish(run(fleet, deployment))
    print(f"scale from zero: first prediction done in {time.monotonic() - started:.2f}s")
    assert done.status == "succeeded", done.error
    assert done.output == "v1"
    up = fleet.decisions(deployment)
    assert up[-1]["desired"] == 1
    assert up[-1]["reason"].startswith("burst: 1 queued")
    assert len(live(fleet, deployment, state="idle")) == 1
    # Idle for the scale-down delay: back to zero, and the decision says why.
    idle_from = time.monotonic()
    until(lambda: not fleet.instances(deployment), IDLE + 15, "scale to zero")
    assert time.monotonic() - idle_from >= IDLE - 1.0
    assert fleet.decisions(deployment)[0]["reason"].startswith("idle for")
    assert fleet.decisions(deployment)[0]["desired"] == 0
    retire(fleet, deployment)


def test_burst_scales_to_max_and_no_further(fleet: Fleet, model: tuple[str, str, str]) -> None:
    name, v1, _ = model
    deployment = deploy(fleet, name, v1, high=2)
    predictions = [run(fleet, deployment, seconds=1.5) for _ in range(6)]
    peak = 0
    while any(p.status not in ("succeeded", "failed", "canceled") for p in predictions):
        peak = max(peak, len(fleet.instances(deployment)))
        for p in predictions:
            if p.status not in ("succeeded", "failed", "canceled"):
                p.reload()
        time.sleep(0.1)
    assert [p.status for p in predictions] == ["succeeded"] * 6
    assert peak == 2  # reached the maximum and never went past it
    decisions = fleet.decisions(deployment)
    assert max(d["desired"] for d in decisions) == 2, decisions
    assert any(d["reason"].startswith("burst:") for d in decisions), decisions
    retire(fleet, deployment)


def test_scale_down_drains_a_busy_instance(fleet: Fleet, model: tuple[str, str, str]) -> None:
    name, v1, _ = model
    deployment = deploy(fleet, name, v1, low=2, high=2)
    until(lambda: len(live(fleet, deployment, state="idle")) == 2, 60, "two warm instances")
    running = [run(fleet, deployment, seconds=4) for _ in range(2)]
    until(lambda: len(live(fleet, deployment, state="processing")) == 2, 30, "both busy")
    owner, short = deployment.split("/")
    fleet.client.deployments.update(owner, short, min_instances=1, max_instances=1)
    # One of them drains: it takes no new work, finishes its prediction, then stops.
    until(lambda: live(fleet, deployment, state="draining"), 10, "one instance draining")
    assert [finish(p).status for p in running] == ["succeeded", "succeeded"]
    until(lambda: len(fleet.instances(deployment)) == 1, 30, "down to one")
    retire(fleet, deployment)


def test_min_instances_stay_warm(fleet: Fleet, model: tuple[str, str, str]) -> None:
    name, v1, _ = model
    deployment = deploy(fleet, name, v1, low=1, high=1)
    instance = until(lambda: live(fleet, deployment, state="idle"), 60, "a warm instance")[0]
    time.sleep(IDLE + 2)  # well past the scale-down delay
    assert [i["id"] for i in fleet.instances(deployment)] == [instance["id"]]
    done = finish(run(fleet, deployment))
    assert done.status == "succeeded"
    retire(fleet, deployment)


# -- rollouts -----------------------------------------------------------------------------------


def test_rollout_under_load_fails_nothing(fleet: Fleet, model: tuple[str, str, str]) -> None:
    name, v1, v2 = model
    deployment = deploy(fleet, name, v1, low=1, high=2)
    until(lambda: live(fleet, deployment, state="idle"), 60, "a warm v1 instance")
    results: list[Any] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            results.append(finish(run(fleet, deployment, seconds=0.2)))

    workers = [threading.Thread(target=load) for _ in range(2)]
    for worker in workers:
        worker.start()
    time.sleep(2)
    owner, short = deployment.split("/")
    updated = fleet.client.deployments.update(owner, short, version=v2)
    assert updated.current_release is not None
    assert updated.current_release.number == 2
    until(
        lambda: (
            fleet.instances(deployment)
            and all(i["release"] == 2 for i in fleet.instances(deployment))
        ),
        90,
        "only release 2 instances",
    )
    time.sleep(1)
    stop.set()
    for worker in workers:
        worker.join(60)
    statuses = [r.status for r in results]
    outputs = [r.output for r in results]
    print(f"rollout: {len(results)} predictions, outputs {outputs[:3]}...{outputs[-3:]}")
    assert statuses.count("succeeded") == len(results)  # zero failed, zero lost
    assert outputs[0] == "v1"
    assert outputs[-1] == "v2"
    first_v2 = outputs.index("v2")
    assert set(outputs[first_v2 + 4 :]) <= {"v2"}  # new work moved over for good
    retire(fleet, deployment)


def test_hardware_change_moves_to_the_new_sku(fleet: Fleet, model: tuple[str, str, str]) -> None:
    name, v1, _ = model
    deployment = deploy(fleet, name, v1, low=1, high=1)
    until(lambda: live(fleet, deployment, state="idle", hardware="cpu"), 60, "a cpu instance")
    owner, short = deployment.split("/")
    fleet.client.deployments.update(owner, short, hardware="gpu-t4")
    moved = until(
        lambda: (
            [i for i in fleet.instances(deployment) if i["hardware"] == "gpu-t4"]
            if all(i["hardware"] == "gpu-t4" for i in fleet.instances(deployment))
            else None
        ),
        60,
        "only gpu-t4 instances",
    )
    assert moved[0]["node"] in ("node-a", "node-b")
    done = finish(run(fleet, deployment))
    assert done.status == "succeeded"
    retire(fleet, deployment)


def test_no_capacity_leaves_an_instance_pending_with_the_reason(
    fleet: Fleet, model: tuple[str, str, str]
) -> None:
    name, v1, _ = model
    deployment = deploy(fleet, name, v1, hardware="gpu-a40-large", low=2, high=2)
    pending = until(lambda: live(fleet, deployment, state="pending", node=""), 30, "pending")
    assert pending[0]["reason"] == "Waiting for capacity: no runner has gpu-a40-large free"
    until(lambda: live(fleet, deployment, state="idle", node="node-b"), 60, "the one that fits")
    done = finish(run(fleet, deployment))  # served meanwhile by the instance that fits
    assert done.status == "succeeded"
    retire(fleet, deployment)


# -- failures -----------------------------------------------------------------------------------


def coglet_pids(fleet: Fleet, version: str) -> list[int]:
    """The coglet servers running ``version`` on either runner."""
    root = fleet.stack.root
    workdirs = {(root / d / "versions" / version).resolve() for d in ("runner", "runner-b")}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cwd in workdirs and b"cog.server.http" in argv:
            found.append(int(entry.name))
    return found


def test_a_killed_instance_is_replaced(fleet: Fleet, model: tuple[str, str, str]) -> None:
    name, _, v2 = model
    deployment = deploy(fleet, name, v2, low=1, high=1)
    first = until(lambda: live(fleet, deployment, state="idle"), 60, "a warm instance")[0]
    pids = coglet_pids(fleet, v2)
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    replacement = until(
        lambda: [i for i in live(fleet, deployment, state="idle") if i["id"] != first["id"]],
        60,
        "a replacement",
    )
    assert replacement
    done = finish(run(fleet, deployment))
    assert done.status == "succeeded"
    retire(fleet, deployment)


def test_a_killed_autoscaler_replica_hands_over(fleet: Fleet, model: tuple[str, str, str]) -> None:
    name, v1, _ = model
    proc = fleet.stack.procs["autoscaler"]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    try:
        # Every target is now decided by the surviving replica (after at most one lease TTL).
        deployment = deploy(fleet, name, v1)
        done = finish(run(fleet, deployment), timeout=60)
        assert done.status == "succeeded"
        until(lambda: not fleet.instances(deployment), IDLE + 15, "scale to zero")
        retire(fleet, deployment)
    finally:
        fleet.stack.start_service("autoscaler")


def test_a_killed_runner_has_its_instances_replaced_elsewhere(
    fleet: Fleet, model: tuple[str, str, str]
) -> None:
    name, v1, _ = model
    # T4s: two on node-b, one on node-a: the instance goes where most are free, node-b.
    deployment = deploy(fleet, name, v1, hardware="gpu-t4", low=1, high=1)
    until(lambda: live(fleet, deployment, state="idle", node="node-b"), 60, "an instance on b")
    running = run(fleet, deployment, seconds=30)
    until(lambda: running.reload() or running.status == "processing", 30, "running")
    waiting = run(fleet, deployment)  # handed to the same instance, not started yet
    time.sleep(0.5)
    proc = fleet.stack.procs["runner-b"]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # The started prediction fails with the reason; the waiting one runs on the replacement.
    failed = finish(running, timeout=60)
    assert failed.status == "failed"
    assert "its runner node-b stopped answering" in failed.error
    done = finish(waiting, timeout=90)
    assert done.status == "succeeded", done.error
    assert [i["node"] for i in fleet.instances(deployment)] == ["node-a"]
    retire(fleet, deployment)


BROKEN = """
from cog import BaseRunner


class Predictor(BaseRunner):
    def setup(self) -> None:
        raise RuntimeError("this release cannot start")

    def run(self) -> str:
        return "never"
"""


def test_a_broken_release_never_takes_over(
    fleet: Fleet, model: tuple[str, str, str], tmp_path: Path
) -> None:
    name, v1, _ = model
    project = tmp_path / "broken"
    project.mkdir()
    (project / "cog.yaml").write_text(COG_YAML)
    (project / "predict.py").write_text(BROKEN)
    broken = fleet.push(name, project)
    deployment = deploy(fleet, name, v1, low=1, high=1)
    serving = until(lambda: live(fleet, deployment, state="idle"), 60, "a warm v1 instance")[0]
    owner, short = deployment.split("/")
    fleet.client.deployments.update(owner, short, version=broken)
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:  # new instances keep failing setup meanwhile
        done = finish(run(fleet, deployment))
        assert done.status == "succeeded", done.error
        assert done.output == "v1"
        time.sleep(0.2)
    assert serving["id"] in [i["id"] for i in fleet.instances(deployment)]
    # Rolling back is a new release of the working version: it takes over.
    fleet.client.deployments.update(owner, short, version=v1)
    until(
        lambda: (
            fleet.instances(deployment)
            and all(i["release"] == 3 for i in fleet.instances(deployment))
        ),
        60,
        "release 3 only",
    )
    retire(fleet, deployment)


def outsider_token(fleet: Fleet) -> str:
    """A token of another account (made the way `python -m cogplane.registry bootstrap` does)."""
    import json
    import subprocess
    import sys

    name = f"outsider-{uuid.uuid4().hex[:6]}"
    done = subprocess.run(
        [sys.executable, "-m", "cogplane.registry", "bootstrap", name, f"{name}-org"],
        env=fleet.stack.service_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(done.stdout.strip().splitlines()[-1])["token"])


def test_monitoring_shows_activity_to_the_owner_only(
    fleet: Fleet, model: tuple[str, str, str]
) -> None:
    name, v1, _ = model
    deployment = deploy(fleet, name, v1, low=1, high=2)
    until(lambda: live(fleet, deployment, state="idle"), 60, "a warm instance")
    outcomes = [finish(run(fleet, deployment, seconds=0.1)).status for _ in range(5)]
    assert outcomes == ["succeeded"] * 5
    time.sleep(1.5)  # the autoscaler samples the deployment every second here
    response = fleet.http.get(f"/v1/deployments/{deployment}/metrics", params={"window": "15m"})
    assert response.status_code == 200, response.text
    metrics = response.json()
    assert metrics["window"] == "15m"
    assert metrics["step_seconds"] == 15
    points = metrics["points"]
    assert sum(p["predictions"] for p in points) == 5
    assert sum(p["succeeded"] for p in points) == 5
    busy = [p for p in points if p["predictions"]]
    assert all(p["predict_time"]["p50"] is not None for p in busy)
    assert all(p["queue_wait"]["p99"] >= p["queue_wait"]["p50"] >= 0 for p in busy)
    sampled = [p for p in points if p["instances"] is not None]
    assert sampled
    assert sampled[-1]["instances"] == {"idle": 1}
    assert sampled[-1]["queue_depth"] == 0
    instances = fleet.instances(deployment)
    assert [(i["state"], i["release"], i["hardware"]) for i in instances] == [("idle", 1, "cpu")]
    decisions = fleet.decisions(deployment)
    assert all({"id", "decided_at", "current", "desired", "reason"} <= d.keys() for d in decisions)
    # Garbage is a clear 422 naming the parameter; nothing about it changes.
    for params, field in (({"window": "2h"}, "window"), ({"step": "0"}, "step")):
        bad = fleet.http.get(f"/v1/deployments/{deployment}/metrics", params=params)
        assert bad.status_code == 422, bad.text
        assert bad.headers["content-type"] == "application/problem+json"
        assert field in bad.text
    bad_limit = fleet.http.get(f"/v1/deployments/{deployment}/decisions", params={"limit": "x"})
    assert bad_limit.status_code == 422
    # Another account sees none of it, exactly as if the deployment did not exist.
    other = {"Authorization": f"Bearer {outsider_token(fleet)}"}
    for path in ("instances", "metrics", "decisions"):
        hidden = fleet.http.get(f"/v1/deployments/{deployment}/{path}", headers=other)
        missing = fleet.http.get(f"/v1/deployments/dev/no-such-deployment/{path}")
        assert hidden.status_code == missing.status_code == 404
    retire(fleet, deployment)
