"""Usage and cost estimates (Cogplane's own endpoints), answered by billing.

Usage is charged to an account: the caller's own or one of their organizations'; any other
account gets the same 404 as other private things, so names do not leak. Money is given as
decimal strings in US dollars, never as floats.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast, get_args

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from cogplane.common.contracts import billing as b
from cogplane.common.db import utcnow
from cogplane.common.errors import InvalidInput, NotFound
from cogplane.common.hardware import get_sku
from cogplane.common.predictions_json import iso
from cogplane.gateway.deps import BusDep, CurrentCaller, CurrentViewer

router = APIRouter(prefix="/v1", tags=["billing"])

DEFAULT_SPAN = timedelta(days=30)
MAX_SPAN = timedelta(days=366)
MAX_INSTANCES = 1000
GROUPS: tuple[str, ...] = get_args(b.GroupBy)
_EARLIEST = datetime.min.replace(tzinfo=UTC)


class UsageLineOut(BaseModel):
    """One group: only the keys the report is grouped by, then its seconds and cost."""

    day: str | None = Field(default=None, description="The day (UTC), YYYY-MM-DD.")
    model: str | None = Field(default=None, description="The model, owner/name.")
    deployment: str | None = Field(
        default=None, description="The deployment, owner/name; null for usage outside one."
    )
    hardware: str | None = Field(default=None, description="The hardware SKU.")
    kind: b.UsageKind | None = Field(default=None, description="setup, idle or processing.")
    seconds: str = Field(description="Billed seconds, exact to the millisecond.")
    cost: str = Field(description="US dollars, rounded half up to the cent.")
    cost_exact: str = Field(description="US dollars, unrounded.")


class UsageOut(BaseModel):
    """Usage charged to an account over a window, grouped as asked."""

    account: str = Field(description="The account charged (a user or an organization).")
    since: str = Field(description="Start of the window (ISO 8601, UTC).")
    until: str = Field(description="End of the window (ISO 8601, UTC).")
    group_by: list[b.GroupBy]
    lines: list[UsageLineOut]
    total_seconds: str
    total_cost: str = Field(description="The sum of the rounded lines (US dollars).")
    total_cost_exact: str = Field(description="The unrounded total (US dollars).")


class EstimateOut(BaseModel):
    """What a deployment configuration costs while its instances are all online."""

    hardware: str
    price_per_second: str = Field(description="US dollars per second of one instance.")
    min_instances: int
    max_instances: int
    per_hour_at_min: str = Field(description="US dollars per hour with min_instances online.")
    per_hour_at_max: str = Field(description="US dollars per hour with max_instances online.")
    per_month_at_min: str = Field(description="US dollars per month with min_instances online.")
    per_month_at_max: str = Field(description="US dollars per month with max_instances online.")
    hours_per_month: int = Field(description="The hours a month is counted as.")


def _invalid(field: str, description: str, kind: str = "value_error") -> dict[str, str]:
    return {"type": kind, "field": field, "description": description}


def _utc(value: datetime, field: str) -> datetime:
    """``value`` in UTC; a time without an offset is taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput([_invalid(field, "Out of range")]) from None


def usage_window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """The window asked for, in UTC: by default the last 30 days up to now; 366 days at most."""
    end = _utc(until, "until") if until is not None else utcnow()
    if since is not None:
        start = _utc(since, "since")
    elif end - _EARLIEST < DEFAULT_SPAN:
        raise InvalidInput([_invalid("until", "Too early for the default 30 days: give since")])
    else:
        start = end - DEFAULT_SPAN
    if end <= start:
        raise InvalidInput([_invalid("until", f"Must be later than since ({iso(start)})")])
    if end - start > MAX_SPAN:
        description = f"The window is at most {MAX_SPAN.days} days: since must not be earlier"
        raise InvalidInput([_invalid("since", f"{description} than {iso(end - MAX_SPAN)}")])
    return start, end


def usage_groups(values: list[str] | None) -> list[b.GroupBy]:
    """The group names of comma lists (``day`` by default), in order, duplicates removed."""
    names = [name.strip() for value in values or ["day"] for name in value.split(",")]
    unknown = [name for name in names if name not in GROUPS]
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        description = f"Unknown {shown}: use a comma list of {', '.join(GROUPS)}"
        raise InvalidInput([_invalid("group_by", description, "enum")])
    return [cast(b.GroupBy, name) for name in dict.fromkeys(names)]


def _line(line: b.UsageLine, group_by: list[b.GroupBy]) -> dict[str, Any]:
    keys = {key: getattr(line, key) for key in group_by}
    return keys | {"seconds": line.seconds, "cost": line.cost, "cost_exact": line.cost_exact}


@router.get(
    "/usage",
    response_model=UsageOut,
    response_model_exclude_unset=True,
    summary="Usage and cost of an account",
)
async def usage(
    viewer: CurrentViewer,
    bus: BusDep,
    since: Annotated[
        datetime | None,
        Query(description="ISO 8601 (UTC when it has no offset); default: 30 days before until."),
    ] = None,
    until: Annotated[
        datetime | None, Query(description="ISO 8601 (UTC when it has no offset); default: now.")
    ] = None,
    group_by: Annotated[
        list[str] | None,
        Query(
            max_length=10,
            description=f"A comma list of {', '.join(GROUPS)} (default: day); repeatable.",
        ),
    ] = None,
    account: Annotated[
        str | None,
        Query(max_length=64, description="An organization you belong to; you by default."),
    ] = None,
) -> Any:
    """Seconds and cost charged to your account (or an organization's) between ``since`` and
    ``until`` (at most 366 days apart), one line per group; lines are rounded to the cent and
    also given exactly."""
    start, end = usage_window(since, until)
    groups = usage_groups(group_by)
    owner = account if account is not None else viewer.username
    if not viewer.can_act_as(owner):
        raise NotFound(f"Account {owner!r} not found")
    query = b.UsageQuery(account=owner, since=start, until=end, group_by=groups)
    report = await bus.request(b.USAGE, query)
    return {
        "account": report.account,
        "since": iso(report.since),
        "until": iso(report.until),
        "group_by": report.group_by,
        "lines": [_line(line, report.group_by) for line in report.lines],
        "total_seconds": report.total_seconds,
        "total_cost": report.total_cost,
        "total_cost_exact": report.total_cost_exact,
    }


def _check_configuration(hardware: str, min_instances: int, max_instances: int) -> None:
    """422 naming every field that is wrong (instance bounds are checked by the query types)."""
    invalid = []
    if get_sku(hardware) is None:
        description = f"Unknown hardware {hardware!r}; see GET /v1/hardware"
        invalid.append(_invalid("hardware", description, "enum"))
    if min_instances > max_instances:
        description = f"Must not exceed max_instances ({min_instances} > {max_instances})"
        invalid.append(_invalid("min_instances", description))
    if invalid:
        raise InvalidInput(invalid)


@router.get(
    "/billing/estimate",
    response_model=EstimateOut,
    summary="What a deployment configuration would cost",
)
async def estimate(
    _: CurrentCaller,
    bus: BusDep,
    hardware: Annotated[str, Query(max_length=64, description="A SKU from GET /v1/hardware.")],
    min_instances: Annotated[
        int, Query(ge=0, le=MAX_INSTANCES, description="Instances always online (0-1000).")
    ] = 0,
    max_instances: Annotated[
        int, Query(ge=0, le=MAX_INSTANCES, description="Most instances online (0-1000).")
    ] = 1,
) -> Any:
    """The price per second of ``hardware``, and the cost per hour and per month with
    ``min_instances`` and with ``max_instances`` online (private deployments pay for all of
    their instances' online time)."""
    _check_configuration(hardware, min_instances, max_instances)
    query = b.EstimateQuery(
        hardware=hardware, min_instances=min_instances, max_instances=max_instances
    )
    return (await bus.request(b.ESTIMATE, query)).model_dump()
