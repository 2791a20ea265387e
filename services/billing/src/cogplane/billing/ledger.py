"""The ledger: instance states and prediction endings in, exactly-once metered entries out.

Every event may arrive twice or out of order. Transitions are stored by ``(instance, seq)`` and
an entry is written for the time between two consecutive transitions as soon as both are
known, under a key derived from them, so a redelivery changes nothing and the order of arrival
does not matter. A transition that never arrives leaves a gap, reported by ``missing_seqs``
rather than guessed over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cogplane.billing.models import BilledInstanceRow, LedgerRow, TransitionRow
from cogplane.billing.rules import (
    InstanceClass,
    Policy,
    cost,
    instance_class,
    money,
    ms_between,
    part_kind,
    split_by_day,
)
from cogplane.common.contracts.billing import GroupBy, InstanceUsage
from cogplane.common.contracts.instances import InstanceLost, InstanceStateChanged
from cogplane.common.contracts.predictions import PredictionFinished
from cogplane.common.db import utcnow

ENDED = ("stopped", "failed")


class NotYetKnown(Exception):
    """An event refers to something billing has not heard of yet: try it again later."""


class Ledger:
    """Billing's tables, inside one unit of work."""

    def __init__(
        self, session: AsyncSession, policy: Policy, prices: Mapping[str, Decimal]
    ) -> None:
        self.session = session
        self.policy = policy
        self.prices = prices

    def price(self, hardware: str) -> Decimal:
        """Dollars per second on ``hardware`` (0 for a SKU without a price: logged by caller)."""
        return self.prices.get(hardware, Decimal(0))

    # -- instances -----------------------------------------------------------------------------

    async def on_state(self, event: InstanceStateChanged) -> int:
        """Record a transition and meter what it closes or opens; how many entries were added."""
        owner = event.ownership
        await self.session.execute(
            insert(BilledInstanceRow)
            .values(
                instance_id=event.instance_id,
                account=owner.account,
                klass=instance_class(event.target, owner.visibility),
                target=event.target,
                model=owner.model,
                deployment=owner.deployment,
                hardware=event.hardware,
                node_id=event.node_id,
            )
            .on_conflict_do_nothing(index_elements=[BilledInstanceRow.instance_id])
        )
        added = await self.session.execute(
            insert(TransitionRow)
            .values(
                instance_id=event.instance_id,
                seq=event.seq,
                state=event.state,
                busy=event.busy,
                at=event.at,
                monotonic=event.monotonic,
            )
            .on_conflict_do_nothing()
            .returning(TransitionRow.seq)
        )
        if added.scalar_one_or_none() is None:
            return 0  # a redelivery
        instance = await self._instance(event.instance_id, lock=True)
        if event.state in ENDED and instance.end_seq is None:
            instance.end_seq = event.seq
        near = await self._transitions(event.instance_id, [event.seq - 1, event.seq + 1])
        this = near.get(event.seq) or await self._transition(event.instance_id, event.seq)
        entries = 0
        if (before := near.get(event.seq - 1)) is not None:
            entries += await self._meter(instance, before, this)
        if (after := near.get(event.seq + 1)) is not None:
            entries += await self._meter(instance, this, after)
        return entries

    async def on_lost(self, event: InstanceLost) -> int:
        """An instance declared lost: its last state lasted until then (by the wall clock)."""
        instance = await self._instance(event.instance_id, lock=True, required=False)
        if instance is None or instance.end_seq is not None or instance.lost_at is not None:
            return 0
        last = (
            await self.session.execute(
                select(TransitionRow)
                .where(TransitionRow.instance_id == event.instance_id)
                .order_by(TransitionRow.seq.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if last is None:
            return 0
        instance.lost_at, instance.lost_after_seq = event.at, last.seq
        instance.end_seq = last.seq
        milliseconds = max(0, round((event.at - last.at).total_seconds() * 1000))
        return await self._write_parts(instance, last, milliseconds, suffix="lost")

    async def _meter(
        self, instance: BilledInstanceRow, start: TransitionRow, end: TransitionRow
    ) -> int:
        if instance.lost_after_seq is not None and start.seq >= instance.lost_after_seq:
            return 0  # already metered up to when it was declared lost
        return await self._write_parts(instance, start, ms_between(start.monotonic, end.monotonic))

    async def _write_parts(
        self, instance: BilledInstanceRow, start: TransitionRow, milliseconds: int, suffix: str = ""
    ) -> int:
        kind = part_kind(start.state, start.busy)
        if kind is None:
            return 0
        rule = self.policy.rule(_klass(instance.klass))
        charged = kind in rule.instance_time and instance.account is not None
        price = self.price(instance.hardware)
        rows = [
            {
                "key": f"i:{instance.instance_id}:{start.seq}:{part.index}{suffix}",
                "account": instance.account,
                "source": "instance",
                "kind": kind,
                "charged": charged,
                "instance_id": instance.instance_id,
                "prediction_id": None,
                "model": instance.model,
                "deployment": instance.deployment,
                "hardware": instance.hardware,
                "day": part.day,
                "started_at": part.started_at,
                "milliseconds": part.milliseconds,
                "price": price,
                "cost": cost(price, part.milliseconds) if charged else Decimal(0),
            }
            for part in split_by_day(start.at, milliseconds)
        ]
        result = await self.session.execute(
            insert(LedgerRow).values(rows).on_conflict_do_nothing().returning(LedgerRow.key)
        )
        return len(result.all())

    async def _instance(
        self, instance_id: str, *, lock: bool = False, required: bool = True
    ) -> Any:
        query = select(BilledInstanceRow).where(BilledInstanceRow.instance_id == instance_id)
        if lock:
            query = query.with_for_update()
        row = (await self.session.execute(query)).scalar_one_or_none()
        if row is None and required:
            raise NotYetKnown(f"instance {instance_id}")
        return row

    async def _transitions(self, instance_id: str, seqs: list[int]) -> dict[int, TransitionRow]:
        query = select(TransitionRow).where(
            TransitionRow.instance_id == instance_id, TransitionRow.seq.in_(seqs)
        )
        return {row.seq: row for row in (await self.session.execute(query)).scalars()}

    async def _transition(self, instance_id: str, seq: int) -> TransitionRow:
        found = await self._transitions(instance_id, [seq])
        return found[seq]

    # -- predictions ---------------------------------------------------------------------------

    async def on_finished(self, event: PredictionFinished) -> int:
        """Meter a prediction's processing time (charged to its account for public pools)."""
        milliseconds = _prediction_ms(event)
        if milliseconds is None or event.instance_id is None:
            return 0  # never started: aborted or canceled while queued costs nothing
        instance = await self._instance(event.instance_id)
        rule = self.policy.rule(_klass(instance.klass))
        price = self.price(instance.hardware)
        started = event.started_at or event.created_at
        statement = (
            insert(LedgerRow)
            .values(
                key=f"p:{event.prediction_id}",
                account=event.owner,
                source="prediction",
                kind="processing",
                charged=rule.prediction_time,
                instance_id=event.instance_id,
                prediction_id=event.prediction_id,
                model=event.model,
                deployment=event.deployment,
                hardware=instance.hardware,
                day=next(split_by_day(started, 0)).day,
                started_at=started,
                milliseconds=milliseconds,
                price=price,
                # The prediction's own cost is always known; whether it is charged is the rule.
                cost=cost(price, milliseconds),
            )
            .on_conflict_do_nothing()
            .returning(LedgerRow.key)
        )
        return len((await self.session.execute(statement)).all())

    async def prediction_costs(self, ids: Sequence[str]) -> dict[str, Decimal]:
        query = select(LedgerRow.prediction_id, LedgerRow.cost).where(
            LedgerRow.source == "prediction", LedgerRow.prediction_id.in_(ids)
        )
        return {str(pid): c for pid, c in (await self.session.execute(query)).all()}

    # -- reports -------------------------------------------------------------------------------

    async def usage(
        self, account: str, since: datetime, until: datetime, group_by: Sequence[GroupBy]
    ) -> list[dict[str, Any]]:
        """Charged milliseconds and exact cost of ``account`` per group, from ``since`` to
        ``until`` (by when each entry's time started)."""
        columns = {
            "day": func.to_char(LedgerRow.day, literal_column("'YYYY-MM-DD'")),
            "model": LedgerRow.model,
            "deployment": LedgerRow.deployment,
            "hardware": LedgerRow.hardware,
            "kind": LedgerRow.kind,
        }
        keys: list[Any] = [columns[name].label(name) for name in group_by]
        query = (
            select(
                *keys,
                func.sum(LedgerRow.milliseconds).label("milliseconds"),
                func.sum(LedgerRow.cost).label("cost"),
            )
            .where(
                LedgerRow.account == account,
                LedgerRow.charged.is_(True),
                LedgerRow.started_at >= since,
                LedgerRow.started_at < until,
            )
            .group_by(*keys)
            .order_by(*keys)
        )
        lines = [dict(row._mapping) for row in (await self.session.execute(query)).all()]
        return _merge(lines, await self._online(account, since, until), group_by)

    async def _online(
        self, account: str, since: datetime, until: datetime, now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The time of ``account``'s instances still online, from their last report until now.

        Not yet in the ledger (an entry is written when the next state arrives), so a
        warm instance's idle hours show in usage as they pass, then as ledger entries.
        """
        now = min(now or utcnow(), until)
        last = (
            select(TransitionRow.instance_id, func.max(TransitionRow.seq).label("seq"))
            .group_by(TransitionRow.instance_id)
            .subquery()
        )
        query = (
            select(BilledInstanceRow, TransitionRow)
            .join(last, last.c.instance_id == BilledInstanceRow.instance_id)
            .join(
                TransitionRow,
                (TransitionRow.instance_id == last.c.instance_id)
                & (TransitionRow.seq == last.c.seq),
            )
            .where(BilledInstanceRow.account == account, BilledInstanceRow.end_seq.is_(None))
        )
        parts = []
        for instance, transition in (await self.session.execute(query)).all():
            kind = part_kind(transition.state, transition.busy)
            rule = self.policy.rule(_klass(instance.klass))
            if kind is None or kind not in rule.instance_time or transition.at >= now:
                continue
            price = self.price(instance.hardware)
            elapsed = round((now - transition.at).total_seconds() * 1000)
            for part in split_by_day(transition.at, elapsed):
                if not since <= part.started_at < until:
                    continue
                parts.append(
                    {
                        "day": part.day.strftime("%Y-%m-%d"),
                        "model": instance.model,
                        "deployment": instance.deployment,
                        "hardware": instance.hardware,
                        "kind": kind,
                        "milliseconds": part.milliseconds,
                        "cost": cost(price, part.milliseconds),
                    }
                )
        return parts

    async def instances(
        self, instance_ids: Sequence[str] | None, only_gaps: bool
    ) -> list[InstanceUsage]:
        """Each instance's parts, lifetime and gaps."""
        query = select(BilledInstanceRow)
        if instance_ids is not None:
            query = query.where(BilledInstanceRow.instance_id.in_(instance_ids))
        rows = list((await self.session.execute(query)).scalars())
        if not rows:
            return []
        ids = [r.instance_id for r in rows]
        parts: dict[tuple[str, str], tuple[int, Decimal]] = {}
        sums = select(
            LedgerRow.instance_id,
            LedgerRow.kind,
            func.sum(LedgerRow.milliseconds),
            func.sum(LedgerRow.cost),
        ).where(LedgerRow.source == "instance", LedgerRow.instance_id.in_(ids))
        for iid, kind, ms, spent in (
            await self.session.execute(sums.group_by(LedgerRow.instance_id, LedgerRow.kind))
        ).all():
            parts[(str(iid), str(kind))] = (int(ms), Decimal(spent))
        spans = select(
            TransitionRow.instance_id,
            func.array_agg(TransitionRow.seq),
            func.min(TransitionRow.monotonic),
            func.max(TransitionRow.monotonic),
            func.min(TransitionRow.at),
        ).where(TransitionRow.instance_id.in_(ids))
        seen: dict[str, tuple[list[int], float, float, datetime]] = {
            str(iid): (list(seqs), lo, hi, first)
            for iid, seqs, lo, hi, first in (
                await self.session.execute(spans.group_by(TransitionRow.instance_id))
            ).all()
        }
        results = []
        for row in rows:
            seqs, lo, hi, first = seen.get(row.instance_id, ([], 0.0, 0.0, datetime.min))
            end = row.end_seq if row.end_seq is not None else max(seqs, default=-1)
            missing = sorted(set(range(end + 1)) - set(seqs))
            if only_gaps and not missing:
                continue
            lifetime: int | None = ms_between(lo, hi) if seqs else None
            if row.lost_at is not None:
                lifetime = round((row.lost_at - first).total_seconds() * 1000)
            results.append(
                InstanceUsage(
                    instance_id=row.instance_id,
                    account=row.account,
                    hardware=row.hardware,
                    charged=bool(self.policy.rule(_klass(row.klass)).instance_time),
                    setup_ms=parts.get((row.instance_id, "setup"), (0, Decimal(0)))[0],
                    idle_ms=parts.get((row.instance_id, "idle"), (0, Decimal(0)))[0],
                    processing_ms=parts.get((row.instance_id, "processing"), (0, Decimal(0)))[0],
                    lifetime_ms=lifetime,
                    ended=row.end_seq is not None,
                    missing_seqs=missing,
                    cost=money(
                        sum(
                            (v[1] for k, v in parts.items() if k[0] == row.instance_id),
                            Decimal(0),
                        )
                    ),
                )
            )
        return results


def _merge(
    lines: list[dict[str, Any]], extra: list[dict[str, Any]], group_by: Sequence[GroupBy]
) -> list[dict[str, Any]]:
    """Add ``extra`` parts into the grouped ``lines`` (same keys), sorted like SQL's lines."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {
        tuple(line[k] for k in group_by): dict(line) for line in lines
    }
    for part in extra:
        key = tuple(part[k] for k in group_by)
        line = merged.setdefault(
            key, {**dict(zip(group_by, key, strict=True)), "milliseconds": 0, "cost": Decimal(0)}
        )
        line["milliseconds"] = int(line["milliseconds"]) + part["milliseconds"]
        line["cost"] = Decimal(line["cost"]) + part["cost"]
    return [merged[k] for k in sorted(merged, key=lambda k: tuple((v is None, v or "") for v in k))]


def _klass(klass: str) -> InstanceClass:
    return "deployment" if klass == "deployment" else "private" if klass == "private" else "public"


def _prediction_ms(event: PredictionFinished) -> int | None:
    """How long a prediction ran, in milliseconds; None when it never started."""
    if event.predict_time is not None:
        return max(0, round(event.predict_time * 1000))
    if event.started_at is not None and event.completed_at is not None:
        return max(0, round((event.completed_at - event.started_at).total_seconds() * 1000))
    return None
