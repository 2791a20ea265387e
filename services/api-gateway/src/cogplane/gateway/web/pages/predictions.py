"""Predictions: the list with its filters, and each prediction's page (its ``urls.web``).

A prediction is shown only to the account it belongs to: the scheduler answers 404 to anyone
else, exactly as the API does, and the page is then the 404 page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from cogplane.common.bus import Bus
from cogplane.common.contracts import models as m
from cogplane.common.contracts import predictions as p
from cogplane.common.errors import CogplaneError
from cogplane.gateway.api.predictions import PredictionOut, prediction_out, with_costs
from cogplane.gateway.api.streams import StreamKeyDep
from cogplane.gateway.deps import BusDep, PublicBase
from cogplane.gateway.web.auth import WebViewer
from cogplane.gateway.web.pages.models import safe_url
from cogplane.gateway.web.render import page
from cogplane.gateway.web.schema_form import output_schema, secret_inputs

router = APIRouter(include_in_schema=False)
STATUSES = ("starting", "processing", "succeeded", "failed", "canceled")
PHASES = (
    ("queued_ms", "Queued", "From creation until an instance took it"),
    ("dispatch_to_start_ms", "Dispatch", "From dispatch until Cog started it"),
    ("run_ms", "Run", "Cog running the model"),
    ("report_ms", "Report", "From Cog's result until it was recorded"),
)
SHORT_DATA_URL = 80


@dataclass(frozen=True)
class Filters:
    """The list's filters, as the form and its links carry them."""

    model: str = ""
    status: str = ""
    source: str = ""
    since: str = ""
    until: str = ""

    def query(self, **more: str) -> str:
        values = {k: v for k, v in {**self.__dict__, **more}.items() if v}
        return urlencode(values)

    def keeps(self, out: PredictionOut) -> bool:
        """Whether a prediction passes the filters the API cannot apply (model, status)."""
        if self.model and out.model != self.model:
            return False
        return not (self.status and out.status != self.status)


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


Text = Annotated[str, Query(max_length=200)]


@router.get("/predictions", response_class=HTMLResponse)
async def list_predictions(
    request: Request,
    viewer: WebViewer,
    bus: BusDep,
    base: PublicBase,
    model: Text = "",
    status: Literal["", "starting", "processing", "succeeded", "failed", "canceled"] = "",
    source: Literal["", "api", "web"] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:
    """Your predictions, newest first; model and status filter each page of 100."""
    first, last = _day(since), _day(until)
    filters = Filters(
        model.strip(),
        status,
        source,
        first.isoformat() if first else "",
        last.isoformat() if last else "",
    )
    query = p.ListPredictions(
        viewer=viewer,
        cursor=cursor,
        source=source or None,
        created_after=f"{first.isoformat()}T00:00:00Z" if first else None,
        created_before=f"{(last + timedelta(days=1)).isoformat()}T00:00:00Z" if last else None,
    )
    found = await bus.request(p.LIST_PREDICTIONS, query)
    outs = [prediction_out(r, base) for r in found.results]
    kept = await with_costs(bus, [o for o in outs if filters.keeps(o)])
    next_link = (
        f"/predictions?{filters.query(cursor=found.next_cursor)}" if found.next_cursor else None
    )
    return page(
        request,
        "predictions/list.html",
        predictions=kept,
        filters=filters,
        statuses=STATUSES,
        models=sorted({o.model for o in outs} | ({filters.model} if filters.model else set())),
        next_link=next_link,
        looked_at=len(outs),
    )


async def _schema(bus: Bus, viewer: m.Viewer, record: p.PredictionRecord) -> dict[str, Any]:
    """The version's OpenAPI schema, or nothing when the model is gone or hidden."""
    owner, _, name = record.model.partition("/")
    ref = m.VersionRef(viewer=viewer, owner=owner, name=name, version_id=record.version)
    try:
        return (await bus.request(m.GET_VERSION, ref)).openapi_schema
    except CogplaneError:
        return {}


@dataclass(frozen=True)
class InputRow:
    name: str
    text: str
    link: str | None = None


def input_rows(given: dict[str, Any], secrets: set[str]) -> list[InputRow]:
    """The inputs as the page lists them: secrets hidden, URLs as links, long data cut."""
    rows = []
    for name, value in given.items():
        if name in secrets:
            rows.append(InputRow(name, "•••••• (secret)"))
        elif isinstance(value, str):
            cut = value.startswith("data:") and len(value) > SHORT_DATA_URL
            short = value[:SHORT_DATA_URL] + "…" if cut else value
            rows.append(InputRow(name, short, safe_url(value)))
        else:
            rows.append(InputRow(name, json.dumps(value)))
    return rows


def phases(record: p.PredictionRecord) -> tuple[list[tuple[str, str, float]], float]:
    """(label, explanation, milliseconds) of each recorded phase, and their total."""
    found = [
        (label, why, float(record.timings[key]))
        for key, label, why in PHASES
        if key in record.timings
    ]
    return found, sum(ms for _, _, ms in found) or 1.0


def live_state(out: PredictionOut) -> dict[str, Any]:
    """What the page scripts follow a prediction with (no input: secrets stay out of it)."""
    return out.model_dump(include={"id", "status", "output", "logs", "error", "metrics", "urls"})


@router.get("/p/{prediction_id}", response_class=HTMLResponse)
async def prediction_page(
    request: Request,
    prediction_id: str,
    viewer: WebViewer,
    bus: BusDep,
    base: PublicBase,
    key: StreamKeyDep,
) -> HTMLResponse:
    """One prediction: input, output, logs, timings per phase, cost and links."""
    ref = p.PredictionRef(viewer=viewer, prediction_id=prediction_id[:64])
    record = await bus.request(p.GET_PREDICTION, ref)
    out = (await with_costs(bus, [prediction_out(record, base, stream_key=key)]))[0]
    schema = await _schema(bus, viewer, record)
    owner, _, name = record.model.partition("/")
    steps, total = phases(record)
    return page(
        request,
        "predictions/detail.html",
        out=out,
        live=live_state(out),
        record=record,
        model_path=f"/models/{owner}/{name}",
        inputs=input_rows(out.input, secret_inputs(schema)),
        output_schema=output_schema(schema),
        phases=steps,
        phases_total=total,
        terminal=out.status in p.TERMINAL,
    )
