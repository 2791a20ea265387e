"""What every benchmark shares: percentiles, and pushing a Cog project through the API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from cogplane.common import archive


def pct(samples: list[float], q: float) -> float:
    """The ``q`` quantile of ``samples`` (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def push(http: httpx.Client, model: str, project: Path) -> dict[str, Any]:
    """Push ``project`` as a new version of ``model`` (owner/name); the finished build."""
    build = http.post(
        f"/v1/models/{model}/builds",
        content=archive.pack(project),
        headers={"Content-Type": "application/gzip"},
    ).json()
    while build["status"] == "building":
        time.sleep(0.1)
        build = http.get(f"/v1/builds/{build['id']}").json()
    if build["status"] != "ready":
        raise RuntimeError(f"bench build failed: {build['error']}")
    return dict(build)
