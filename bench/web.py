"""Server time of the web app's pages with realistic data (budget: 200 ms each).

A platform of its own (fresh data, free ports), filled through the API the way people fill it:

* 100 models, a third owned by the development organization, half of them private, with
  descriptions; one of them has a built no-op version;
* 1,000 predictions of that version, with inputs of a few hundred characters, run for real on
  up to 4 instances (those still queued after ``RUN_FOR`` seconds are canceled: a small machine
  cannot run them all in time);
* 3 deployments of it (``min_instances`` 0, so no instance competes with the pages for CPU).

Then, signed in with a session cookie, every page the gateway serves (found from its routers, so
new pages are measured too; path parameters filled with the things above) is fetched
sequentially, after a warm-up. Times are measured from this process with httpx over loopback:
the server's time plus one local round trip (about a millisecond).
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
from fastapi.routing import APIRoute

from bench.common import pct, push
from cogplane.cli.devstack import DEFAULT_PORTS, DevStack
from cogplane.common.embedded import free_port
from cogplane.gateway.app import SPEC
from cogplane.gateway.web.errors import API_PREFIXES

EXAMPLES = Path(__file__).parents[1] / "examples"
MODELS = 100
PREDICTIONS = 1000
DEPLOYMENTS = 3
RUN_FOR = 20.0
CONCURRENCY = 16
WARM_UP = 3
SAMPLES = 30
BUDGET_MS = 200.0
ORG = "dev-org"


def push_noop(http: httpx.Client, model: str) -> str:
    return str(push(http, model, EXAMPLES / "noop")["version"])


def create_models(http: httpx.Client) -> list[str]:
    models = []
    for i in range(MODELS):
        owner = ORG if i % 3 == 0 else "dev"
        body = {
            "owner": owner,
            "name": f"model-{i:03d}",
            "visibility": "private" if i % 2 else "public",
            "hardware": "cpu",
            "description": f"Model {i}: " + "turns words into other words. " * 4,
            "github_url": f"https://github.com/example/model-{i}",
        }
        http.post("/v1/models", json=body).raise_for_status()
        models.append(f"{owner}/{body['name']}")
    return models


async def run_predictions(stack: DevStack, version: str) -> tuple[list[str], int]:
    """``PREDICTIONS`` predictions, submitted ``CONCURRENCY`` at a time; those still queued when
    ``RUN_FOR`` seconds have passed are canceled (on a small machine the instances cannot run
    them all in time). Returns their ids, oldest first, and how many were canceled."""
    headers = {"Authorization": f"Bearer {stack.token}"}
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, timeout=90) as http:
        began = time.monotonic()

        async def submit(start: int) -> None:
            for i in range(start, PREDICTIONS, CONCURRENCY):
                text = f"prediction {i}: " + "a sentence of input text. " * 12
                made = await http.post(
                    "/v1/predictions", json={"version": version, "input": {"value": text}}
                )
                made.raise_for_status()
                ids.append(made.json()["id"])

        await asyncio.gather(*(submit(i) for i in range(CONCURRENCY)))
        canceled = 0
        if not await ended_within(http, RUN_FOR - (time.monotonic() - began)):
            # The queue runs oldest first: cancel from the newest until the finished ones.
            for prediction_id in reversed(ids):
                answer = (await http.post(f"/v1/predictions/{prediction_id}/cancel")).json()
                if answer["status"] == "succeeded":
                    break
                canceled += 1
        if not await ended_within(http, 60):
            raise RuntimeError("bench predictions did not end after being canceled")
    return ids, canceled


async def ended_within(http: httpx.AsyncClient, seconds: float) -> bool:
    """Whether the newest page of predictions ends within ``seconds`` (the queue runs oldest
    first, so then all have)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        latest = (await http.get("/v1/predictions")).json()["results"]
        if all(p["status"] not in ("starting", "processing") for p in latest):
            return True
        await asyncio.sleep(0.3)
    return False


def create_deployments(http: httpx.Client, model: str, version: str) -> list[str]:
    names = []
    for i in range(DEPLOYMENTS):
        body = {
            "name": f"deployment-{i}",
            "model": model,
            "version": version,
            "hardware": "cpu",
            "min_instances": 0,
            "max_instances": 2,
        }
        http.post("/v1/deployments", json=body).raise_for_status()
        names.append(f"dev/deployment-{i}")
    return names


def page_urls(pool: dict[str, str]) -> list[str]:
    """A URL of every GET page of the gateway, its path parameters filled from ``pool``."""
    urls = []
    for router in SPEC.routers:
        for route in router.routes:
            if not isinstance(route, APIRoute) or "GET" not in (route.methods or set()):
                continue
            if route.path.startswith(API_PREFIXES) or route.path in ("/", "/login"):
                continue
            url = route.path
            for param in route.dependant.path_params:
                key = f"{route.path.split('/')[1]}.{param.name}"
                value = pool.get(key, pool.get(param.name))
                if value is None:
                    break
                url = url.replace(f"{{{param.name}}}", quote(value, safe=""))
            else:
                urls.append(url)
    return urls


def sign_in(http: httpx.Client, token: str) -> None:
    """Sign in as a browser does: the client keeps the session cookie."""
    shown = http.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', shown.text)
    if nonce is None:
        raise RuntimeError("the sign-in page has no nonce")
    data = {"token": token, "next": "/account", "nonce": nonce.group(1)}
    signed = http.post("/login", data=data)
    if signed.status_code != 303 or "cogplane_session" not in http.cookies:
        raise RuntimeError(f"bench sign-in failed: {signed.status_code}")


def measure_pages(stack: DevStack, urls: list[str]) -> list[tuple[str, int, list[float]]]:
    assert stack.token is not None
    results = []
    headers = {"Accept": "text/html"}
    with httpx.Client(base_url=stack.gateway_url, timeout=30, headers=headers) as http:
        sign_in(http, stack.token)
        for url in urls:
            status = 0
            for _ in range(WARM_UP):
                status = http.get(url).status_code
            samples = []
            for _ in range(SAMPLES):
                began = time.perf_counter()
                http.get(url)
                samples.append((time.perf_counter() - began) * 1000)
            results.append((url, status, samples))
    return results


def fill(stack: DevStack) -> dict[str, str]:
    """Realistic data through the API; what page parameters are filled with."""
    headers = {"Authorization": f"Bearer {stack.token}"}
    with httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=60) as http:
        began = time.perf_counter()
        models = create_models(http)
        busy = next(m for m in models if m.startswith("dev/"))
        version = push_noop(http, busy)
        built = time.perf_counter()
        ids, canceled = asyncio.run(run_predictions(stack, version))
        ran = time.perf_counter()
        deployments = create_deployments(http, busy, version)
    print(
        f"\nweb pages: {MODELS} models, {len(ids)} predictions ({len(ids) - canceled} succeeded, "
        f"{canceled} canceled while queued), {len(deployments)} deployments "
        f"(models and build {built - began:.1f} s, predictions {ran - built:.1f} s)"
    )
    owner, name = busy.split("/")
    return {
        "owner": owner,
        "name": name,
        "deployments.name": deployments[0].split("/")[1],
        "prediction_id": ids[0],  # the oldest: it ran
        "id": ids[0],
        "version_id": version,
        "organization": ORG,
    }


def report(results: list[tuple[str, int, list[float]]]) -> None:
    print(f"{SAMPLES} sequential requests a page after {WARM_UP} to warm up (budget: p99 200 ms)")
    slow = []
    for url, status, samples in results:
        shown = re.sub(r"/p/\w+", "/p/{id}", url)
        p50, p99 = pct(samples, 0.5), pct(samples, 0.99)
        flag = "  OVER BUDGET" if p99 > BUDGET_MS else ""
        print(f"{shown:<42} {status}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms{flag}")
        if p99 > BUDGET_MS:
            slow.append(shown)
    print(f"over {BUDGET_MS:.0f} ms (p99): {', '.join(slow) if slow else 'none'}")


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        stack = DevStack(
            Path(root) / ".cogplane",
            ports={name: free_port() for name in DEFAULT_PORTS},
            durable=False,
            extra_env={
                # The predictions run on up to 4 instances of the shared pool, not 1.
                "COGPLANE_RUNNER_CPU_SLOTS": "4",
                "COGPLANE_SCHEDULER_POOL_MAX_INSTANCES": "4",
            },
        )
        stack.start()
        try:
            pool = fill(stack)
            report(measure_pages(stack, page_urls(pool)))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
