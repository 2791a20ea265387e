"""``cogplane usage``: what ``GET /v1/usage`` reports, as a table."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def usage_params(
    since: str | None, until: str | None, group_by: str | None, account: str | None
) -> dict[str, str]:
    """The query of ``GET /v1/usage``: only what was given (the gateway checks it)."""
    given = {"since": since, "until": until, "group_by": group_by, "account": account}
    return {name: value for name, value in given.items() if value is not None}


def usage_table(report: dict[str, Any]) -> Table:
    """One row per line: the keys it is grouped by, its seconds and its cost (rounded)."""
    keys = list(report["group_by"])
    table = Table(*keys, "seconds", "cost (USD)")
    for column in table.columns[len(keys) :]:
        column.justify = "right"
    for line in report["lines"]:
        cells = ["-" if line.get(key) is None else str(line[key]) for key in keys]
        table.add_row(*cells, line["seconds"], line["cost"])
    return table


def usage_title(report: dict[str, Any]) -> str:
    """Whose usage, over which window."""
    return f"Usage of {report['account']} from {report['since']} to {report['until']}"


def usage_total(report: dict[str, Any]) -> str:
    """The total line under the table."""
    seconds, cost, exact = (report[k] for k in ("total_seconds", "total_cost", "total_cost_exact"))
    return f"Total: {seconds} s, ${cost} (exactly ${exact})"
