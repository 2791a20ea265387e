"""Monitoring of a deployment (Cogplane's own endpoints): instances, time series, decisions.

Visible to whoever may see the deployment (its owner account and that organization's members);
everyone else gets the same 404 as for the deployment itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from cogplane.common.bus import Bus
from cogplane.common.contracts import deployments as d
from cogplane.common.contracts import monitoring as m
from cogplane.common.contracts import scaling as s
from cogplane.common.contracts.models import Viewer
from cogplane.common.db import utcnow
from cogplane.common.predictions_json import iso
from cogplane.gateway.deps import BusDep, CurrentViewer

router = APIRouter(prefix="/v1", tags=["monitoring"])

WINDOWS = {"15m": 15 * 60, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400}
Window = Literal["15m", "1h", "6h", "24h", "7d"]
# The step of each window when none is asked for: about 60 points.
DEFAULT_STEPS = {"15m": 15, "1h": 60, "6h": 360, "24h": 1440, "7d": 10080}
MAX_POINTS = 1500


class InstanceOut(BaseModel):
    id: str
    state: str = Field(
        description="pending, booting, setting_up, idle, processing or draining; 'draining' is "
        "also shown for an instance asked to stop that has not said so yet."
    )
    since: str = Field(description="When it entered this state.")
    created_at: str
    release: int = Field(description="The deployment release it runs.")
    node: str = Field(description="The runner node it runs on (empty while pending).")
    hardware: str
    slots: int
    busy: int = Field(description="Predictions it is running or about to run.")
    reason: str | None = Field(description="Why it is pending, draining or failed.")


class InstancesOut(BaseModel):
    results: list[InstanceOut]


class PercentilesOut(BaseModel):
    p50: float | None
    p95: float | None
    p99: float | None


class PointOut(BaseModel):
    """One step of the time series."""

    at: str
    predictions: int = Field(description="Predictions created in this step.")
    succeeded: int
    failed: int
    canceled: int
    queue_wait: PercentilesOut = Field(description="Seconds from creation to start.")
    predict_time: PercentilesOut = Field(description="Seconds of running.")
    queue_depth: int | None = Field(description="Queued predictions at the step's last sample.")
    inflight: int | None
    instances: dict[str, int] | None = Field(description="Instances by state at that sample.")


class MetricsOut(BaseModel):
    window: str
    step_seconds: int
    since: str
    until: str
    points: list[PointOut]


class DecisionOut(BaseModel):
    id: str
    decided_at: str
    current: int
    desired: int
    reason: str


class DecisionsOut(BaseModel):
    results: list[DecisionOut]


async def _target(bus: Bus, viewer: Viewer, owner: str, name: str) -> str:
    """The deployment's target; 404 for those who may not see it."""
    info = await bus.request(
        d.GET_DEPLOYMENT, d.DeploymentRef(viewer=viewer, owner=owner, name=name)
    )
    return info.target


@router.get(
    "/deployments/{owner}/{name}/instances",
    response_model=InstancesOut,
    summary="A deployment's instances",
)
async def list_instances(owner: str, name: str, viewer: CurrentViewer, bus: BusDep) -> Any:
    """Every instance that has not stopped, with its state, since when, and its release."""
    target = await _target(bus, viewer, owner, name)
    found = await bus.request(m.LIST_INSTANCES, d.TargetRef(target=target))
    return {
        "results": [
            {
                "id": i.id,
                "state": "draining"
                if i.stopping and i.state in ("idle", "processing")
                else i.state,
                "since": iso(i.state_since),
                "created_at": iso(i.created_at),
                "release": i.release,
                "node": i.node_id,
                "hardware": i.hardware,
                "slots": i.slots,
                "busy": i.busy,
                "reason": i.reason,
            }
            for i in found.results
        ]
    }


@router.get(
    "/deployments/{owner}/{name}/metrics",
    response_model=MetricsOut,
    summary="A deployment's time series",
)
async def metrics(
    owner: str,
    name: str,
    viewer: CurrentViewer,
    bus: BusDep,
    window: Window = "1h",
    step: Annotated[int | None, Query(ge=1, le=86400, description="Seconds per point.")] = None,
) -> Any:
    """Predictions per step by outcome, queue wait and predict time percentiles (seconds), and
    the queue depth and instances by state sampled by the autoscaler, over the last ``window``."""
    target = await _target(bus, viewer, owner, name)
    span = WINDOWS[window]
    step_seconds = max(step or DEFAULT_STEPS[window], -(-span // MAX_POINTS))
    until = utcnow()
    since = until - timedelta(seconds=span)
    stats = await bus.request(
        m.TARGET_STATS,
        m.StatsQuery(target=target, since=since, until=until, step_seconds=step_seconds),
    )
    samples = await bus.request(
        s.TARGET_SERIES,
        s.SeriesQuery(target=target, since=since, until=until, step_seconds=step_seconds),
    )
    return {
        "window": window,
        "step_seconds": step_seconds,
        "since": iso(since),
        "until": iso(until),
        "points": _merge(stats.results, samples.results, step_seconds),
    }


def _bucket(at: datetime, step: int) -> int:
    return int(at.timestamp()) // step


def _merge(
    stats: list[m.StatsBucket], samples: list[s.TargetSample], step: int
) -> list[dict[str, Any]]:
    """One point per step that has predictions or a sample, oldest first."""
    by_stats = {_bucket(b.at, step): b for b in stats}
    by_sample = {_bucket(x.at, step): x for x in samples}
    points = []
    for key in sorted(by_stats.keys() | by_sample.keys()):
        stat, sample = by_stats.get(key), by_sample.get(key)
        empty = m.Percentiles()
        points.append(
            {
                "at": iso(datetime.fromtimestamp(key * step, tz=utcnow().tzinfo)),
                "predictions": stat.created if stat else 0,
                "succeeded": stat.succeeded if stat else 0,
                "failed": stat.failed if stat else 0,
                "canceled": stat.canceled if stat else 0,
                "queue_wait": (stat.queue_wait if stat else empty).model_dump(),
                "predict_time": (stat.predict_time if stat else empty).model_dump(),
                "queue_depth": sample.queued if sample else None,
                "inflight": sample.inflight if sample else None,
                "instances": sample.instances if sample else None,
            }
        )
    return points


@router.get(
    "/deployments/{owner}/{name}/decisions",
    response_model=DecisionsOut,
    summary="The autoscaler's decisions for a deployment",
)
async def decisions(
    owner: str,
    name: str,
    viewer: CurrentViewer,
    bus: BusDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    """Its most recent scaling decisions, newest first, each with its reason."""
    target = await _target(bus, viewer, owner, name)
    found = await bus.request(s.LIST_DECISIONS, s.DecisionQuery(target=target, limit=limit))
    return {
        "results": [
            {
                "id": x.id,
                "decided_at": iso(x.decided_at),
                "current": x.current,
                "desired": x.desired,
                "reason": x.reason,
            }
            for x in found.results
        ]
    }
