"""Billing rules as data, and the pure arithmetic of the ledger.

**Policy.** Each instance belongs to a class: ``deployment`` (a deployment's dedicated
instances), ``private`` (the shared pool of a private model, dedicated to its owner) or
``public`` (the shared pool of a public model). The policy says, per class, which parts of an
instance's time are charged to the instance's account (the deployment's or the model's owner),
and whether each prediction's processing time is charged to the prediction's own account.
Replicate's published rules are the default: public models cost their predictions' processing
only; private models and deployments cost setup, idle and processing of their instances.

**Money.** Prices are decimal dollars per second. Durations are whole milliseconds (instance
parts from the runner's monotonic clock; predictions from Cog's ``predict_time``). A ledger
entry's cost is ``price * milliseconds / 1000``, exact (no rounding); rounding happens only
when a usage report turns entries into invoice lines: each line is rounded half up to the cent,
and the report's total is the sum of its rounded lines (``cost_exact`` keeps the unrounded sum).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from pydantic import BaseModel

from cogplane.common.contracts.billing import UsageKind
from cogplane.common.hardware import CATALOG

InstanceClass = Literal["deployment", "private", "public"]
CENT = Decimal("0.01")
HOURS_PER_MONTH = 730  # 365 days * 24 hours / 12 months
ALL_KINDS: tuple[UsageKind, ...] = ("setup", "idle", "processing")


class ChargeRule(BaseModel):
    """What is charged for instances of one class."""

    instance_time: list[UsageKind]
    prediction_time: bool


class Policy(BaseModel):
    """The rule of each class."""

    deployment: ChargeRule = ChargeRule(instance_time=list(ALL_KINDS), prediction_time=False)
    private: ChargeRule = ChargeRule(instance_time=list(ALL_KINDS), prediction_time=False)
    public: ChargeRule = ChargeRule(instance_time=[], prediction_time=True)

    def rule(self, kind: InstanceClass) -> ChargeRule:
        """The rule of a class."""
        rule: ChargeRule = getattr(self, kind)
        return rule


def default_prices() -> dict[str, Decimal]:
    """Replicate's published per-second prices, by SKU."""
    return {sku.sku: sku.price_per_second for sku in CATALOG}


def instance_class(target: str, visibility: str | None) -> InstanceClass:
    """The billing class of an instance of ``target``."""
    if target.startswith("deployment:"):
        return "deployment"
    return "private" if visibility == "private" else "public"


def part_kind(state: str, busy: int) -> UsageKind | None:
    """Which part of an instance's time a state is (None: the instance is not online)."""
    if state in ("booting", "setting_up"):
        return "setup"
    if state == "idle":
        return "idle"
    if state == "processing":
        return "processing"
    if state == "draining":  # finishing its work, or waiting to stop
        return "processing" if busy > 0 else "idle"
    return None


def cost(price: Decimal, milliseconds: int) -> Decimal:
    """The exact cost of ``milliseconds`` at ``price`` dollars per second."""
    return price * milliseconds / 1000


def round_line(amount: Decimal) -> Decimal:
    """An invoice line's amount: rounded half up to the cent."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def ms_between(start_monotonic: float, end_monotonic: float) -> int:
    """Whole milliseconds between two readings of one runner's monotonic clock."""
    return max(0, round((end_monotonic - start_monotonic) * 1000))


@dataclass(frozen=True)
class DayPart:
    """The share of an interval that falls on one UTC day."""

    index: int
    day: datetime
    started_at: datetime
    milliseconds: int


def split_by_day(started_at: datetime, milliseconds: int) -> Iterator[DayPart]:
    """Split an interval at UTC midnights; the parts' milliseconds add up exactly."""
    start = started_at.astimezone(UTC)
    left = milliseconds
    index = 0
    while True:
        midnight = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=1)
        room = int((midnight - start) / timedelta(milliseconds=1))
        day = datetime(start.year, start.month, start.day, tzinfo=UTC)
        if left <= room:
            yield DayPart(index, day, start, left)
            return
        yield DayPart(index, day, start, room)
        left -= room
        start = midnight
        index += 1


def estimate(price: Decimal, instances: int) -> tuple[Decimal, Decimal]:
    """Cost per hour and per month (``HOURS_PER_MONTH``) of ``instances`` always online."""
    hour = price * 3600 * instances
    return hour, hour * HOURS_PER_MONTH


def price_of(prices: Mapping[str, Decimal], hardware: str) -> Decimal:
    """The price of a SKU (KeyError when it has none)."""
    return prices[hardware]


def money(amount: Decimal) -> str:
    """A dollar amount as plain decimal text without trailing zeros (``"0.0005625"``)."""
    text = format(amount.normalize(), "f")
    return text if text != "-0" else "0"
