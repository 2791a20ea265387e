"""Autoscaling of deployments: how fast and how exactly the platform reacts.

A platform of its own (fresh data, free ports) with a short scale-down delay, and measures:

* burst from zero: first queued prediction → instance start requested → first dispatch;
* burst on a warm deployment: queued burst → the autoscaler's scale-up decision (p50, p95);
* scale-to-zero accuracy: how long after the idle timeout T the decision to stop came (every
  trial must fall in [T, T + 1 s]; a stop before T is premature);
* rollout under constant load: failures (must be zero) and latency during the rollout vs steady;
* autoscaler tick cost with 1,000 synthetic deployments (the whole tick: the scheduler's
  observation over NATS, leases, decisions, samples).

Timestamps come from the services' own tables, so they are the platform's view, not the client's.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import pct, push
from cogplane.autoscaler.config import AutoscalerSettings
from cogplane.autoscaler.decide import Policy
from cogplane.autoscaler.loop import Autoscaler, Timing
from cogplane.cli.devstack import DEFAULT_PORTS, DevStack
from cogplane.common.bus import Bus
from cogplane.common.db import Database
from cogplane.common.embedded import free_port
from cogplane.common.service import Runtime

IDLE = 2.0
TRIALS = 8
SYNTHETIC = 1000
NOOP = """
from cog import BaseRunner


class Predictor(BaseRunner):
    def run(self, tag: str = "{tag}") -> str:
        return tag
"""
SLEEPY = """
import time
from cog import BaseRunner, Input


class Predictor(BaseRunner):
    def run(self, seconds: float = Input(default=1, ge=0, le=30)) -> str:
        time.sleep(seconds)
        return "done"
"""
COG_YAML = 'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\n'


class Platform:
    """The stack, an HTTP client, and SQL on the services' tables."""

    def __init__(self, stack: DevStack) -> None:
        self.stack = stack
        self.http = httpx.Client(
            base_url=stack.gateway_url,
            headers={"Authorization": f"Bearer {stack.token}"},
            timeout=60,
        )

    def sql(self, query: str, **params: Any) -> list[Any]:
        async def go() -> list[Any]:
            engine = create_async_engine(self.stack.postgres.url)
            try:
                async with engine.begin() as conn:  # commits: some statements write
                    return list((await conn.execute(text(query), params)).all())
            finally:
                await engine.dispose()

        return asyncio.run(go())

    def push(self, model: str, code: str) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp)
            (project / "cog.yaml").write_text(COG_YAML)
            (project / "predict.py").write_text(code)
            return str(push(self.http, model, project)["version"])

    def model(self, name: str) -> str:
        body = {"owner": "dev", "name": name, "visibility": "private", "hardware": "cpu"}
        self.http.post("/v1/models", json=body).raise_for_status()
        return f"dev/{name}"

    def deploy(self, model: str, version: str, low: int, high: int) -> str:
        name = f"bench-{uuid.uuid4().hex[:6]}"
        body = {
            "name": name,
            "model": model,
            "version": version,
            "hardware": "cpu",
            "min_instances": low,
            "max_instances": high,
        }
        self.http.post("/v1/deployments", json=body).raise_for_status()
        return f"dev/{name}"

    def target(self, deployment: str) -> str:
        """The scheduler's target of a deployment."""
        for _ in range(100):  # the scheduler learns of a new deployment from an event
            rows = self.sql("SELECT id FROM scheduler.targets WHERE deployment = :d", d=deployment)
            if rows:
                return str(rows[0][0])
            time.sleep(0.05)
        raise RuntimeError(f"the scheduler does not know {deployment}")

    def predict(self, deployment: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(f"/v1/deployments/{deployment}/predictions", json={"input": body})
        response.raise_for_status()
        return dict(response.json())

    def wait(self, prediction: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while prediction["status"] not in ("succeeded", "failed", "canceled"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"prediction {prediction['id']} still {prediction['status']}")
            time.sleep(0.02)
            prediction = self.http.get(f"/v1/predictions/{prediction['id']}").json()
        return prediction

    def instances(self, deployment: str) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = self.http.get(
            f"/v1/deployments/{deployment}/instances"
        ).json()["results"]
        return results

    def until_instances(self, deployment: str, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.instances(deployment)) != count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{deployment} did not reach {count} instances")
            time.sleep(0.05)


def ms(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() * 1000


def burst_from_zero(platform: Platform, model: str, version: str) -> None:
    deployment = platform.deploy(model, version, 0, 1)
    to_start, to_dispatch, booted = [], [], []
    for _ in range(TRIALS):
        platform.until_instances(deployment, 0, timeout=IDLE + 30)
        done = platform.wait(platform.predict(deployment, {}))
        (created, dispatched, instance_created) = platform.sql(
            "SELECT p.created_at, p.dispatched_at, i.created_at "
            "FROM scheduler.predictions p JOIN scheduler.instances i ON i.id = p.instance_id "
            "WHERE p.id = :id",
            id=done["id"],
        )[0]
        to_start.append(ms(created, instance_created))
        to_dispatch.append(ms(created, dispatched))
        booted.append(ms(instance_created, dispatched))
    print(f"\nburst from zero ({TRIALS} trials, noop model)")
    print(
        f"queued -> instance start requested  p50 {pct(to_start, 0.5):7.1f} ms  "
        f"max {max(to_start):7.1f} ms  (budget 250 ms)"
    )
    print(
        f"queued -> first dispatch            p50 {pct(to_dispatch, 0.5):7.1f} ms  "
        f"max {max(to_dispatch):7.1f} ms  (of which instance boot p50 {pct(booted, 0.5):.1f} ms)"
    )


def burst_when_warm(platform: Platform, model: str, version: str) -> None:
    deployment = platform.deploy(model, version, 1, 4)
    target = platform.target(deployment)
    reactions = []
    for _ in range(TRIALS):
        platform.until_instances(deployment, 1, timeout=IDLE + 30)
        start = platform.sql("SELECT now()")[0][0]
        burst = [platform.predict(deployment, {"seconds": 1}) for _ in range(6)]
        first = platform.sql(
            "SELECT min(created_at) FROM scheduler.predictions WHERE id = ANY(:ids)",
            ids=[p["id"] for p in burst],
        )[0][0]
        for prediction in burst:
            platform.wait(prediction)
        decided = platform.sql(
            "SELECT min(decided_at) FROM autoscaler.scaling_decisions "
            "WHERE target = :t AND decided_at >= :s AND desired > 1",
            t=target,
            s=start,
        )[0][0]
        reactions.append(ms(first, decided))
    print(f"\nburst on a warm deployment ({TRIALS} bursts of 6 x 1 s, min 1, max 4)")
    print(
        f"queued -> scale-up decision  p50 {pct(reactions, 0.5):7.1f} ms  "
        f"p95 {pct(reactions, 0.95):7.1f} ms  (budget 1000 ms)"
    )


def scale_to_zero(platform: Platform, model: str, version: str) -> None:
    deployment = platform.deploy(model, version, 0, 1)
    target = platform.target(deployment)
    late = []
    for _ in range(TRIALS):
        platform.until_instances(deployment, 0, timeout=IDLE + 30)
        since = platform.sql("SELECT now()")[0][0]
        platform.wait(platform.predict(deployment, {}))
        platform.until_instances(deployment, 0, timeout=IDLE + 30)
        decided_at, observed = platform.sql(
            "SELECT decided_at, observed FROM autoscaler.scaling_decisions "
            "WHERE target = :t AND decided_at >= :s AND desired = 0 ORDER BY decided_at LIMIT 1",
            t=target,
            s=since,
        )[0]
        idle_since = max(
            [
                datetime.fromisoformat(observed["last_activity_at"]),
                *(datetime.fromisoformat(i["state_since"]) for i in observed["instances"]),
            ]
        )
        late.append((decided_at - idle_since).total_seconds() - IDLE)
    premature = sum(1 for x in late if x < 0)
    inside = sum(1 for x in late if 0 <= x <= 1)
    print(f"\nscale to zero, idle timeout T = {IDLE:g} s ({TRIALS} trials)")
    print(
        f"stop decided after T + {pct(late, 0.5) * 1000:.0f} ms (p50), "
        f"+{max(late) * 1000:.0f} ms (max); within [T, T+1 s]: {inside}/{TRIALS}; "
        f"premature: {premature}"
    )


def rollout(platform: Platform, model: str, v1: str, v2: str) -> None:
    deployment = platform.deploy(model, v1, 1, 2)
    platform.until_instances(deployment, 1)
    samples: list[tuple[float, float, str]] = []
    stop = threading.Event()

    def load() -> None:
        client = httpx.Client(
            base_url=platform.stack.gateway_url,
            headers={"Authorization": f"Bearer {platform.stack.token}", "Prefer": "wait=30"},
            timeout=60,
        )
        while not stop.is_set():
            began = time.monotonic()
            body = client.post(
                f"/v1/deployments/{deployment}/predictions", json={"input": {}}
            ).json()
            samples.append((began, (time.monotonic() - began) * 1000, body.get("status", "?")))

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(5)
    patched = time.monotonic()
    owner, name = deployment.split("/")
    platform.http.patch(f"/v1/deployments/{owner}/{name}", json={"version": v2}).raise_for_status()
    while True:
        current = platform.instances(deployment)
        if current and all(i["release"] == 2 for i in current):
            break
        time.sleep(0.05)
    rolled = time.monotonic()
    time.sleep(2)
    stop.set()
    for worker in workers:
        worker.join()
    steady = [lat for at, lat, _ in samples if at < patched]
    during = [lat for at, lat, _ in samples if patched <= at <= rolled]
    failed = sum(1 for _, _, status in samples if status != "succeeded")
    print(f"\nrollout under constant load (4 clients, Prefer: wait, {len(samples)} predictions)")
    print(
        f"failed or lost: {failed};  rollout took {rolled - patched:.2f} s;  steady p50 "
        f"{pct(steady, 0.5):.1f} ms p99 {pct(steady, 0.99):.1f} ms;  during p50 "
        f"{pct(during, 0.5):.1f} ms p99 {pct(during, 0.99):.1f} ms"
    )


@contextmanager
def synthetic_targets(platform: Platform, version_spec: dict[str, Any]) -> Iterator[None]:
    """SYNTHETIC deployment targets, each with one idle instance on a node that is not real."""
    import json

    tag = uuid.uuid4().hex[:6]
    spec = json.dumps(version_spec)
    platform.sql(
        "INSERT INTO scheduler.targets (id, version_spec, desired, created_at, last_activity_at,"
        " kind, deployment, release, hardware, min_instances, max_instances, deleted) "
        "SELECT 'deployment:syn-' || :tag || '-' || g, CAST(:spec AS jsonb), 1, now(), now(),"
        " 'deployment', 'bench/syn-' || g, 1, 'cpu', 0, 5, false "
        "FROM generate_series(1, :n) g RETURNING 1",
        tag=tag,
        spec=spec,
        n=SYNTHETIC,
    )
    platform.sql(
        "INSERT INTO scheduler.instances (id, target, node_id, version_id, hardware, state, seq,"
        " slots, created_at, state_since, release, stopping) "
        "SELECT 'syn' || :tag || g, 'deployment:syn-' || :tag || '-' || g, 'bench-node',"
        " 'v', 'cpu', 'idle', 3, 1, now(), now(), 1, false "
        "FROM generate_series(1, :n) g RETURNING 1",
        tag=tag,
        n=SYNTHETIC,
    )
    try:
        yield
    finally:
        platform.sql(
            "DELETE FROM scheduler.instances WHERE id LIKE 'syn' || :tag || '%' RETURNING 1",
            tag=tag,
        )
        platform.sql(
            "DELETE FROM scheduler.targets WHERE id LIKE 'deployment:syn-' || :tag || '%' "
            "RETURNING 1",
            tag=tag,
        )


def tick_cost(platform: Platform, version: str) -> None:
    stack = platform.stack
    spec = platform.sql(
        "SELECT version_spec FROM scheduler.targets WHERE version_spec->>'version_id' = :v LIMIT 1",
        v=version,
    )[0][0]
    # Only the replica measured here decides: the platform's own would act on the synthetic ones.
    stack.stop_service("autoscaler")

    async def measure() -> list[float]:
        settings = AutoscalerSettings(
            database_url=stack.postgres.url, nats_url=stack.nats.url, port=0
        )
        bus = Bus(stack.nats.url, "bench-autoscaler", timedelta(seconds=30))
        await bus.connect()
        db = Database(settings, "bench-autoscaler")
        rt = Runtime(name="bench-autoscaler", settings=settings, bus=bus, db=db)
        scaler = Autoscaler(
            rt,
            Policy(idle_timeout=timedelta(minutes=5)),
            Timing(interval=1.0, sample_every=timedelta(seconds=0)),
        )
        costs = []
        try:
            for _ in range(6):
                began = time.perf_counter()
                await scaler.tick()
                costs.append((time.perf_counter() - began) * 1000)
        finally:
            await scaler.release()
            await bus.close()
            await db.close()
        return costs

    with synthetic_targets(platform, spec):
        costs = asyncio.run(measure())
    stack.start_service("autoscaler")
    steady = costs[1:]  # the first tick takes every lease
    print(f"\nautoscaler tick with {SYNTHETIC} synthetic deployments (one idle instance each)")
    print(
        f"first tick {costs[0]:.0f} ms;  then p50 {statistics.median(steady):.0f} ms, "
        f"max {max(steady):.0f} ms  (observe + leases + {SYNTHETIC} decisions + samples)"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        stack = DevStack(
            Path(root) / ".cogplane",
            ports={name: free_port() for name in DEFAULT_PORTS},
            durable=False,
            extra_env={
                "COGPLANE_AUTOSCALER_IDLE_TIMEOUT": str(IDLE),
                "COGPLANE_AUTOSCALER_STABLE_WINDOW": "2",
                "COGPLANE_RUNNER_CPU_SLOTS": "5",
            },
        )
        stack.start()
        try:
            platform = Platform(stack)
            noop = platform.model("bench-noop")
            v1 = platform.push(noop, NOOP.format(tag="v1"))
            v2 = platform.push(noop, NOOP.format(tag="v2"))
            sleepy = platform.model("bench-sleepy")
            slow = platform.push(sleepy, SLEEPY)
            burst_from_zero(platform, noop, v1)
            burst_when_warm(platform, sleepy, slow)
            scale_to_zero(platform, noop, v1)
            rollout(platform, noop, v1, v2)
            tick_cost(platform, v1)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
