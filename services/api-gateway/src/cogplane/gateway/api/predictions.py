"""``/v1/predictions`` and ``/v1/models/{owner}/{name}/predictions``, in Replicate's shapes."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import BaseModel, Field

from cogplane.common.bus import Bus
from cogplane.common.contracts import billing as b
from cogplane.common.contracts import models as m
from cogplane.common.contracts import predictions as p
from cogplane.common.errors import InvalidInput
from cogplane.common.predictions_json import render_prediction
from cogplane.common.service import Runtime
from cogplane.gateway.api.files import gateway_settings
from cogplane.gateway.api.models import page_url
from cogplane.gateway.api.schemas import Body
from cogplane.gateway.api.streams import StreamKeyDep
from cogplane.gateway.deps import BusDep, CurrentViewer, PublicBase
from cogplane.gateway.file_inputs import rewrite_file_inputs
from cogplane.gateway.validation import validate_input
from cogplane.gateway.versions import VersionCache
from cogplane.gateway.waiters import Waiters
from cogplane.gateway.web.session import COOKIE

router = APIRouter(prefix="/v1", tags=["predictions"])
_PREFER = re.compile(r"^\s*wait(?:=(\d+))?\s*$")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
DEFAULT_WAIT = 60
MIN_CANCEL_AFTER = 5.0
# How long a GET waits for billing's costs before answering without them.
COST_TIMEOUT = 0.3
MAX_COST_IDS = 200  # PredictionCostQuery's bound (a page holds 100)
logger = logging.getLogger(__name__)
# What a prediction runs: a version, and the deployment it waits in (None: the version's pool).
Resolver = Callable[[], Awaitable[tuple[p.VersionSpec, p.DeploymentPlacement | None]]]


class ModelPredictionCreate(Body):
    input: dict[str, Any] = Field(description="The model's inputs, as its schema describes them.")
    webhook: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
    webhook_completed: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
    webhook_events_filter: list[p.WebhookEvent] | None = None
    stream: bool | None = Field(
        default=None, description="Deprecated: streaming URLs are always given."
    )


class PredictionCreate(ModelPredictionCreate):
    version: str = Field(max_length=300, description="A version id, owner/name:id, or owner/name.")


class PredictionOut(BaseModel):
    """Replicate's prediction object."""

    id: str
    model: str
    version: str
    input: dict[str, Any]
    output: Any
    logs: str
    error: str | None
    status: p.PredictionStatus
    source: Literal["api", "web"]
    data_removed: bool
    created_at: str
    started_at: str | None
    completed_at: str | None
    metrics: dict[str, Any]
    urls: dict[str, str]


class PredictionPage(BaseModel):
    next: str | None
    previous: str | None
    results: list[PredictionOut]


def prediction_out(
    record: p.PredictionRecord,
    base: str,
    *,
    pending: bool = False,
    stream_key: bytes | None = None,
) -> PredictionOut:
    """The client-facing view; ``pending`` shows an unfinished one as ``starting`` (§4.4).

    With ``stream_key`` (``streams.StreamKeyDep``), predictions of streaming models get
    ``urls.stream``. The rendering is shared with webhook bodies.
    """
    rendered = render_prediction(record, base, stream_key=stream_key, pending=pending)
    return PredictionOut.model_validate(rendered)


async def with_costs(bus: Bus, outs: list[PredictionOut]) -> list[PredictionOut]:
    """``metrics.cost`` (exact US dollars) on finished predictions, asked of billing in one call.

    Only when billing answers within ``COST_TIMEOUT``: on any error or delay the predictions are
    returned as they are, so that reading predictions never depends on billing.
    """
    ids = [out.id for out in outs if out.status in p.TERMINAL]
    if not ids:
        return outs
    query = b.PredictionCostQuery(prediction_ids=ids[:MAX_COST_IDS])
    try:
        call = bus.request(b.PREDICTION_COSTS, query, timeout=COST_TIMEOUT)
        found = await asyncio.wait_for(call, COST_TIMEOUT)
    except Exception as exc:  # any failure of billing: answer without costs
        logger.debug("prediction costs unavailable: %s", exc)
        return outs
    for out in outs:
        if out.id in found.costs:
            out.metrics["cost"] = found.costs[out.id]
    return outs


def parse_prefer(value: str | None) -> int | None:
    """Seconds to wait from ``Prefer: wait`` / ``wait=N`` (1-60); None without the header."""
    if value is None:
        return None
    match = _PREFER.match(value)
    seconds = int(match.group(1)) if match and match.group(1) else DEFAULT_WAIT
    if match is None or not 1 <= seconds <= DEFAULT_WAIT:
        invalid = {
            "type": "header",
            "field": "Prefer",
            "description": "Must be wait or wait=N with N from 1 to 60",
        }
        raise InvalidInput([invalid])
    return seconds


def parse_cancel_after(value: str | None) -> float | None:
    """Seconds from ``Cancel-After`` (``30s``, ``5m``, ``1h30m``, or a bare number); at least 5."""
    if value is None:
        return None
    text = value.strip()
    seconds: float | None = None
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        seconds = float(text)
    elif (match := _DURATION.match(text)) and text:
        hours, minutes, secs = match.groups()
        seconds = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0)
    if seconds is None or seconds < MIN_CANCEL_AFTER:
        invalid = {
            "type": "header",
            "field": "Cancel-After",
            "description": "Must be a duration of at least 5s, like 30s, 5m or 1h30m",
        }
        raise InvalidInput([invalid])
    return seconds


async def create(
    request: Request,
    response: Response,
    ref: str,
    body: ModelPredictionCreate,
    viewer: m.Viewer,
    bus: Any,
    base: str,
    prefer: str | None,
    cancel_after: str | None,
    stream_key: bytes,
    *,
    resolve: Resolver | None = None,
) -> PredictionOut:
    """Resolve, validate, admit, and wait when asked.

    ``resolve`` says what to run (a deployment's release); by default the version ``ref`` names.
    """
    wait = parse_prefer(prefer)
    deadline = parse_cancel_after(cancel_after)
    if resolve is None:
        versions: VersionCache = _runtime(request).extras["versions"]
        spec, placement = version_spec(await versions.resolve(bus, viewer, ref)), None
    else:
        spec, placement = await resolve()
    cleaned = validate_input(spec.openapi_schema, body.input, key=spec.version_id)
    # Our own file URLs become signed links Cog can download without a token.
    cleaned = await rewrite_file_inputs(
        cleaned, viewer, bus=bus, base=base, settings=gateway_settings(request)
    )
    events = list(body.webhook_events_filter or [])
    webhook = body.webhook or body.webhook_completed
    if body.webhook is None and body.webhook_completed is not None:
        events = ["completed"]
    submit = p.SubmitPrediction(
        viewer=viewer,
        version=spec,
        input=cleaned,
        webhook=webhook,
        webhook_events_filter=events,
        cancel_after_seconds=deadline,
        streaming=_streams(spec.openapi_schema),
        deployment=placement,
        source=_source(request),
    )
    record = await bus.request(p.SUBMIT_PREDICTION, submit)
    response.status_code = status.HTTP_201_CREATED
    response.headers["Location"] = f"{base}/v1/predictions/{record.id}"
    if wait is None:
        return prediction_out(record, base, stream_key=stream_key)
    response.headers["Preference-Applied"] = f"wait={wait}" if prefer and "=" in prefer else "wait"
    waiters: Waiters = _runtime(request).extras["waiters"]
    done = await waiters.until_done(record, wait) if record.status not in p.TERMINAL else record
    if done is None:  # it may have finished between admission and waiting
        done = await bus.request(
            p.GET_PREDICTION, p.PredictionRef(viewer=viewer, prediction_id=record.id)
        )
    return prediction_out(done, base, pending=True, stream_key=stream_key)


def version_spec(resolved: m.ResolvedVersion) -> p.VersionSpec:
    """What an instance needs to run a resolved version."""
    version = resolved.version
    return p.VersionSpec.of(
        version,
        owner=version.owner,
        name=version.name,
        visibility=resolved.visibility,
        hardware=resolved.hardware,
    )


def _source(request: Request) -> p.Source:
    """``web`` for predictions the web app makes (a browser session, no token), else ``api``."""
    from_session = COOKIE in request.cookies and request.headers.get("authorization") is None
    return "web" if from_session else "api"


def _streams(openapi: dict[str, Any]) -> bool:
    post = openapi.get("paths", {}).get("/predictions", {}).get("post", {})
    return bool(post.get("x-cog-streaming"))


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


PreferHeader = Annotated[str | None, Header(alias="Prefer", description="wait or wait=N (1-60 s)")]
CancelAfterHeader = Annotated[
    str | None, Header(alias="Cancel-After", description="A deadline such as 30s or 5m")
]


@router.post("/predictions", response_model=PredictionOut, status_code=status.HTTP_201_CREATED)
async def create_prediction(
    request: Request,
    response: Response,
    body: PredictionCreate,
    viewer: CurrentViewer,
    bus: BusDep,
    base: PublicBase,
    stream_key: StreamKeyDep,
    prefer: PreferHeader = None,
    cancel_after: CancelAfterHeader = None,
) -> PredictionOut:
    """Run a version (bare id, owner/name:id, or owner/name for its latest version)."""
    return await create(
        request, response, body.version, body, viewer, bus, base, prefer, cancel_after, stream_key
    )


@router.post(
    "/models/{owner}/{name}/predictions",
    response_model=PredictionOut,
    status_code=status.HTTP_201_CREATED,
)
async def create_model_prediction(
    request: Request,
    response: Response,
    owner: str,
    name: str,
    body: ModelPredictionCreate,
    viewer: CurrentViewer,
    bus: BusDep,
    base: PublicBase,
    stream_key: StreamKeyDep,
    prefer: PreferHeader = None,
    cancel_after: CancelAfterHeader = None,
) -> PredictionOut:
    """Run a model's latest version."""
    ref = f"{owner}/{name}"
    return await create(
        request, response, ref, body, viewer, bus, base, prefer, cancel_after, stream_key
    )


@router.get("/predictions", response_model=PredictionPage)
async def list_predictions(
    request: Request,
    viewer: CurrentViewer,
    bus: BusDep,
    base: PublicBase,
    stream_key: StreamKeyDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    created_after: Annotated[str | None, Query(description="ISO 8601 time")] = None,
    created_before: Annotated[str | None, Query(description="ISO 8601 time")] = None,
    source: Literal["api", "web"] | None = None,
) -> PredictionPage:
    """Your predictions, newest first, 100 per page."""
    query = p.ListPredictions.model_validate(
        {
            "viewer": viewer,
            "cursor": cursor,
            "created_after": created_after,
            "created_before": created_before,
            "source": source,
        }
    )
    page = await bus.request(p.LIST_PREDICTIONS, query)
    results = [prediction_out(r, base, stream_key=stream_key) for r in page.results]
    return PredictionPage(
        results=await with_costs(bus, results),
        next=page_url(request, base, page.next_cursor),
        previous=None,
    )


@router.get("/predictions/{prediction_id}", response_model=PredictionOut)
async def get_prediction(
    prediction_id: str, viewer: CurrentViewer, bus: BusDep, base: PublicBase, key: StreamKeyDep
) -> PredictionOut:
    """One of your predictions; a finished one carries ``metrics.cost`` when billing knows it."""
    ref = p.PredictionRef(viewer=viewer, prediction_id=prediction_id)
    out = prediction_out(await bus.request(p.GET_PREDICTION, ref), base, stream_key=key)
    return (await with_costs(bus, [out]))[0]


@router.post("/predictions/{prediction_id}/cancel", response_model=PredictionOut)
async def cancel_prediction(
    prediction_id: str, viewer: CurrentViewer, bus: BusDep, base: PublicBase, key: StreamKeyDep
) -> PredictionOut:
    """Cancel a prediction: a queued one never runs; a running one is stopped in Cog."""
    ref = p.PredictionRef(viewer=viewer, prediction_id=prediction_id)
    return prediction_out(await bus.request(p.CANCEL_PREDICTION, ref), base, stream_key=key)
