"""A no-op Cog model called directly and through the whole platform, in the same run."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench.common import pct, push
from cogplane.cli.devstack import DevStack
from cogplane.common.testing.coglet import coglet

EXAMPLES = Path(__file__).parents[1] / "examples"
SCHEMA_SCRIPT = (
    Path(__file__).parents[1] / "services/runner/src/cogplane/runner/build/cog_schema.py"
)
SEQUENTIAL = 300
CONCURRENT = 600
CONCURRENCY = 8

Call = Callable[[], Awaitable[object]]


async def sequential(call: Call, n: int) -> list[float]:
    for _ in range(20):
        await call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def rate(call: Call, n: int, concurrency: int) -> float:
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


def noop_schema() -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, str(SCHEMA_SCRIPT), "--predict", "predict.py:Predictor"],
        cwd=EXAMPLES / "noop",
        capture_output=True,
        text=True,
        check=True,
    )
    schema: dict[str, object] = json.loads(out.stdout)["openapi_schema"]
    return schema


async def direct(url: str) -> tuple[list[float], float]:
    """Sync predictions straight to coglet, retrying its 409 while a slot frees up."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def call() -> object:
            while True:
                response = await http.post("/predictions", json={"input": {"value": "x"}})
                if response.status_code != 409:
                    response.raise_for_status()
                    return response

        return await sequential(call, SEQUENTIAL), await rate(call, CONCURRENT, CONCURRENCY)


async def platform(stack: DevStack, version: str) -> tuple[list[float], float]:
    """``Prefer: wait`` predictions through the gateway, scheduler, runner and Cog."""
    headers = {"Authorization": f"Bearer {stack.token}", "Prefer": "wait"}
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=headers, timeout=90, limits=limits
    ) as http:

        async def call() -> object:
            response = await http.post(
                "/v1/predictions", json={"version": version, "input": {"value": "x"}}
            )
            response.raise_for_status()
            if response.json()["status"] != "succeeded":
                raise RuntimeError(f"bench prediction did not succeed: {response.text}")
            return response

        return await sequential(call, SEQUENTIAL), await rate(call, CONCURRENT, CONCURRENCY)


def push_noop(stack: DevStack) -> str:
    headers = {"Authorization": f"Bearer {stack.token}"}
    with httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=60) as http:
        body = {"owner": "dev", "name": "bench-noop", "visibility": "private", "hardware": "cpu"}
        http.post("/v1/models", json=body).raise_for_status()
        return str(push(http, "dev/bench-noop", EXAMPLES / "noop")["version"])


def measure(stack: DevStack) -> None:
    """Print latency and throughput of both paths and what the platform adds."""
    version = push_noop(stack)
    with (
        tempfile.TemporaryDirectory() as tmp,
        coglet(EXAMPLES / "noop", noop_schema(), Path(tmp) / "noop") as url,
    ):
        direct_samples, direct_rate = asyncio.run(direct(url))
    platform_samples, platform_rate = asyncio.run(platform(stack, version))
    print(f"\nno-op model: {SEQUENTIAL} sequential, {CONCURRENT} at {CONCURRENCY} concurrent")
    for label, samples, throughput in (
        ("cog", direct_samples, direct_rate),
        ("cogplane", platform_samples, platform_rate),
    ):
        print(
            f"{label:<9} p50 {pct(samples, 0.5):7.2f} ms  p99 {pct(samples, 0.99):7.2f} ms"
            f"  throughput {throughput:7.1f}/s"
        )
    print(
        f"added     p50 {pct(platform_samples, 0.5) - pct(direct_samples, 0.5):+7.2f} ms"
        f"  p99 {pct(platform_samples, 0.99) - pct(direct_samples, 0.99):+7.2f} ms"
        f"  throughput ratio {platform_rate / direct_rate:.2f}"
    )
