"""Usage: cost and seconds of an account by day, model, deployment and hardware."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cogplane.common.contracts import billing as b
from cogplane.common.db import utcnow
from cogplane.common.errors import NotFound, Unavailable
from cogplane.gateway.deps import BusDep
from cogplane.gateway.web.auth import WebViewer
from cogplane.gateway.web.render import page

router = APIRouter(include_in_schema=False)

SPANS = (7, 30, 90)
BREAKDOWNS: tuple[tuple[b.GroupBy, str], ...] = (
    ("model", "Model"),
    ("deployment", "Deployment"),
    ("hardware", "Hardware"),
)
OUTSIDE = {"model": "(no model)", "deployment": "(not a deployment)", "hardware": "(unknown)"}


@dataclass(frozen=True)
class Row:
    """One line of a usage table."""

    label: str
    seconds: Decimal
    cost: Decimal

    @property
    def duration(self) -> str:
        return duration(self.seconds)

    def chart(self) -> dict[str, str]:
        return {"label": self.label, "seconds": str(self.seconds), "cost": str(self.cost)}


def duration(seconds: Decimal) -> str:
    """Seconds the way people read them: ``42.5 s``, ``3 min 12 s``, ``5 h 07 min``."""
    if seconds < 60:
        return f"{seconds.quantize(Decimal('0.1'))} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600:,} h {whole % 3600 // 60:02d} min"


def _rows(report: b.UsageReport, key: b.GroupBy) -> list[Row]:
    rows = [
        Row(getattr(line, key) or OUTSIDE.get(key, "—"), Decimal(line.seconds), Decimal(line.cost))
        for line in report.lines
    ]
    return sorted(rows, key=lambda row: (-row.cost, -row.seconds, row.label))


def _days(report: b.UsageReport, first: date, last: date) -> list[Row]:
    """One row per day of the window, days without usage included (oldest first)."""
    found = {line.day: line for line in report.lines}
    rows = []
    for offset in range((last - first).days + 1):
        day = (first + timedelta(days=offset)).isoformat()
        line = found.get(day)
        seconds, cost = (line.seconds, line.cost) if line else ("0", "0")
        rows.append(Row(day, Decimal(seconds), Decimal(cost)))
    return rows


@router.get("/usage", response_class=HTMLResponse)
async def usage_page(
    request: Request, viewer: WebViewer, bus: BusDep, account: str = "", days: str = "30"
) -> HTMLResponse:
    """What an account (you or one of your organizations) was charged, over 7, 30 or 90 days."""
    owner = account[:64] or viewer.username
    if not viewer.can_act_as(owner):
        raise NotFound(f"Account {owner!r} not found")
    span = int(days) if days.isdigit() and int(days) in SPANS else 30
    until = utcnow()
    since = until - timedelta(days=span)
    groups: list[b.GroupBy] = ["day", *(key for key, _ in BREAKDOWNS)]
    context: dict[str, Any] = {
        "account": owner,
        "accounts": [viewer.username, *viewer.organizations],
    }
    context |= {"days": span, "spans": SPANS, "since": since, "until": until}
    try:
        reports = await asyncio.gather(
            *(
                bus.request(
                    b.USAGE, b.UsageQuery(account=owner, since=since, until=until, group_by=[key])
                )
                for key in groups
            )
        )
    except Unavailable as exc:
        return page(request, "usage.html", status_code=503, unavailable=exc.detail, **context)
    by_day = _days(reports[0], since.date(), until.date())
    breakdowns = [
        (key, label, _rows(report, key))
        for (key, label), report in zip(BREAKDOWNS, reports[1:], strict=True)
    ]
    chart_data = {"days": [row.chart() for row in by_day]}
    chart_data |= {key: [row.chart() for row in rows] for key, _, rows in breakdowns}
    total = reports[0]
    return page(
        request,
        "usage.html",
        unavailable=None,
        by_day=by_day,
        breakdowns=breakdowns,
        total_cost=Decimal(total.total_cost),
        total_seconds=duration(Decimal(total.total_seconds)),
        chart_data=chart_data,
        **context,
    )
