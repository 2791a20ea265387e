"""Billing's NATS handlers: a durable consumer of every event, usage queries and estimates.

The consumer is durable: billing stopped for a while reads on from where it left, and every
event is applied at most once (by its id, and by the ledger's own keys).
"""

from __future__ import annotations

import logging
from decimal import Decimal

from cogplane.billing.config import BillingSettings
from cogplane.billing.ledger import Ledger
from cogplane.billing.repository import IntakeRepository
from cogplane.billing.rules import HOURS_PER_MONTH, estimate, money, round_line
from cogplane.common.contracts import billing as b
from cogplane.common.contracts.base import Empty
from cogplane.common.contracts.events import parse_event
from cogplane.common.contracts.instances import InstanceLost, InstanceStateChanged
from cogplane.common.contracts.predictions import PredictionFinished
from cogplane.common.errors import InvalidInput
from cogplane.common.service import Runtime

logger = logging.getLogger(__name__)
EVENTS = "cogplane.events.>"
CONSUMER = "billing-intake"
RPCS = (b.INGEST_STATUS, b.USAGE, b.PREDICTION_COSTS, b.ESTIMATE, b.INSTANCE_USAGE)


def _seconds(milliseconds: int) -> str:
    return str(Decimal(milliseconds) / 1000)


class Billing:
    """The handlers, with the policy and prices they apply."""

    def __init__(self, rt: Runtime) -> None:
        self.db = rt.require_db()
        settings = rt.settings
        assert isinstance(settings, BillingSettings)
        self.policy, self.prices = settings.policy, settings.prices

    async def on_event(self, data: bytes, _: dict[str, str]) -> None:
        event = parse_event(data)
        async with self.db.unit_of_work() as session:
            if not await IntakeRepository(session).record(event.id, event.type, event.occurred_at):
                return  # seen before: a redelivery
            ledger = Ledger(session, self.policy, self.prices)
            if isinstance(event, InstanceStateChanged):
                if event.hardware not in self.prices:
                    logger.warning("no price for %s: its time costs nothing", event.hardware)
                await ledger.on_state(event)
            elif isinstance(event, InstanceLost):
                await ledger.on_lost(event)
            elif isinstance(event, PredictionFinished):
                # NotYetKnown (its instance's first report is not in yet) rolls the whole unit
                # back, the event recorded above included: it comes again later.
                await ledger.on_finished(event)

    async def status(self, _: Empty) -> b.IngestStatus:
        async with self.db.unit_of_work() as session:
            count, last = await IntakeRepository(session).status()
        return b.IngestStatus(events_recorded=count, last_event_at=last)

    async def usage(self, query: b.UsageQuery) -> b.UsageReport:
        if query.until <= query.since:
            raise InvalidInput.field("until", "must be after since")
        groups = list(dict.fromkeys(query.group_by))
        async with self.db.unit_of_work() as session:
            rows = await Ledger(session, self.policy, self.prices).usage(
                query.account, query.since, query.until, groups
            )
        lines = []
        total_ms, total, total_exact = 0, Decimal(0), Decimal(0)
        for row in rows:
            exact = Decimal(row["cost"])
            rounded = round_line(exact)
            total_ms += int(row["milliseconds"])
            total += rounded
            total_exact += exact
            lines.append(
                b.UsageLine(
                    **{name: row[name] for name in groups},
                    seconds=_seconds(int(row["milliseconds"])),
                    cost=str(rounded),
                    cost_exact=money(exact),
                )
            )
        return b.UsageReport(
            account=query.account,
            since=query.since,
            until=query.until,
            group_by=groups,
            lines=lines,
            total_seconds=_seconds(total_ms),
            total_cost=str(total),
            total_cost_exact=money(total_exact),
        )

    async def costs(self, query: b.PredictionCostQuery) -> b.PredictionCosts:
        async with self.db.unit_of_work() as session:
            ledger = Ledger(session, self.policy, self.prices)
            found = await ledger.prediction_costs(query.prediction_ids)
        return b.PredictionCosts(costs={pid: money(c) for pid, c in found.items()})

    async def estimate(self, query: b.EstimateQuery) -> b.Estimate:
        if query.hardware not in self.prices:
            raise InvalidInput.field("hardware", f"{query.hardware!r} is not a hardware SKU")
        if query.min_instances > query.max_instances:
            raise InvalidInput.field("min_instances", "must not be more than max_instances")
        price = self.prices[query.hardware]
        hour_min, month_min = estimate(price, query.min_instances)
        hour_max, month_max = estimate(price, query.max_instances)
        return b.Estimate(
            hardware=query.hardware,
            price_per_second=money(price),
            min_instances=query.min_instances,
            max_instances=query.max_instances,
            per_hour_at_min=str(round_line(hour_min)),
            per_hour_at_max=str(round_line(hour_max)),
            per_month_at_min=str(round_line(month_min)),
            per_month_at_max=str(round_line(month_max)),
            hours_per_month=HOURS_PER_MONTH,
        )

    async def instances(self, query: b.InstanceUsageQuery) -> b.InstanceUsageList:
        async with self.db.unit_of_work() as session:
            ledger = Ledger(session, self.policy, self.prices)
            found = await ledger.instances(query.instance_ids, query.only_gaps)
        return b.InstanceUsageList(results=found)


async def register(rt: Runtime) -> None:
    """Take in every event exactly once; answer usage, costs and estimates."""
    billing = Billing(rt)
    await rt.bus.consume(CONSUMER, EVENTS, billing.on_event)
    await rt.bus.serve(b.INGEST_STATUS, billing.status)
    await rt.bus.serve(b.USAGE, billing.usage)
    await rt.bus.serve(b.PREDICTION_COSTS, billing.costs)
    await rt.bus.serve(b.ESTIMATE, billing.estimate)
    await rt.bus.serve(b.INSTANCE_USAGE, billing.instances)
