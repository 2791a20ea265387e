"""``python -m bench``: latency and throughput of the authenticated API path.

Starts the platform the way ``make dev`` does (fresh data, free ports) and measures, in one run:

* ``floor``: ``GET /livez`` of the gateway, a bare HTTP round trip through the same stack;
* ``api``: ``GET /v1/account``, authenticated (steady state: the token is in the caller cache);
* ``verify``: the registry's token check over NATS, what a cache miss adds.

It prints percentiles and what the authenticated path adds over the bare round trip, then the
build time of a push with new dependencies and of one that changed only code.
Then a no-op Cog model called directly and through the whole platform (``bench/predictions.py``),
and last the autoscaling of deployments (``bench/scaling.py``).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import predictions, scaling, web
from bench.common import pct as percentile
from bench.common import push
from cogplane.cli.devstack import DEFAULT_PORTS, DevStack
from cogplane.common.bus import Bus
from cogplane.common.contracts.accounts import VERIFY_TOKEN, VerifyToken
from cogplane.common.embedded import free_port

SEQUENTIAL = 500
CONCURRENT = 2000
CONCURRENCY = 16


async def latencies(call: Callable[[], Awaitable[object]], n: int) -> list[float]:
    for _ in range(50):  # warm-up
        await call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def throughput(call: Callable[[], Awaitable[object]], n: int, concurrency: int) -> float:
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


def report(name: str, samples: list[float], rate: float) -> None:
    print(
        f"{name:<6} p50 {percentile(samples, 0.5):6.2f} ms  p99 {percentile(samples, 0.99):6.2f} ms"
        f"  mean {statistics.fmean(samples):6.2f} ms  throughput {rate:7.0f} req/s"
    )


async def measure(stack: DevStack) -> None:
    assert stack.token is not None
    token = stack.token
    bus = Bus(stack.nats.url, "bench", timedelta(seconds=10))
    await bus.connect()
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=headers, limits=limits
    ) as http:

        async def verify() -> object:
            return await bus.request(VERIFY_TOKEN, VerifyToken(token=token))

        def via_http(path: str) -> Callable[[], Awaitable[object]]:
            async def call() -> object:
                response = await http.get(path)
                response.raise_for_status()
                return response

            return call

        results = {}
        for name, call in (
            ("floor", via_http("/livez")),
            ("api", via_http("/v1/account")),
            ("verify", verify),
        ):
            samples = await latencies(call, SEQUENTIAL)
            results[name] = (samples, await throughput(call, CONCURRENT, CONCURRENCY))
    await bus.close()

    print(f"\n{SEQUENTIAL} sequential calls each, {CONCURRENT} at {CONCURRENCY} concurrent")
    for name, (samples, rate) in results.items():
        report(name, samples, rate)
    floor, api = results["floor"][0], results["api"][0]
    print(
        f"auth + account over a bare round trip: p50 "
        f"{percentile(api, 0.5) - percentile(floor, 0.5):+.2f} ms, p99 "
        f"{percentile(api, 0.99) - percentile(floor, 0.99):+.2f} ms;"
        f" throughput ratio api/floor {results['api'][1] / results['floor'][1]:.2f}"
    )


def measure_builds(stack: DevStack) -> None:
    """Build times of a push with new dependencies, then of one that only changed code."""
    headers = {"Authorization": f"Bearer {stack.token}"}
    examples = Path(__file__).parents[1] / "examples"
    with httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=60) as http:
        body = {"owner": "dev", "name": "bench-hello", "visibility": "private", "hardware": "cpu"}
        http.post("/v1/models", json=body).raise_for_status()
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp) / "hello"
            shutil.copytree(examples / "hello", project)
            first = push_and_wait(http, project)
            (project / "predict.py").write_text((project / "predict.py").read_text() + "\n# edit\n")
            second = push_and_wait(http, project)
    print("\nbuilds of examples/hello (the runner's own build time)")
    for label, build in (("new environment", first), ("code change only", second)):
        reused = "reused" if build["env_reused"] else "built"
        print(f"{label:<17} {build['duration_seconds']:6.2f} s  (environment {reused})")


def push_and_wait(http: httpx.Client, project: Path) -> dict[str, Any]:
    return push(http, "dev/bench-hello", project)


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        stack = DevStack(
            Path(root) / ".cogplane",
            ports={name: free_port() for name in DEFAULT_PORTS},
            durable=False,
        )
        stack.start()
        try:
            asyncio.run(measure(stack))
            measure_builds(stack)
            predictions.measure(stack)
        finally:
            stack.stop()
    scaling.main()  # a platform of its own, with a short scale-down delay
    web.main()  # web pages' server time with realistic data, on a platform of its own


main()
