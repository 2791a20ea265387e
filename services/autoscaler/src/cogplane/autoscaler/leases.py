"""Leases: exactly one autoscaler replica decides for each target at a time.

Every replica renews its leases on each tick and takes free or expired ones up to its fair share
(targets divided by live replicas), giving back what it holds beyond that share. A replica that
dies stops renewing, and its targets are taken over once its leases expire (``ttl``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cogplane.autoscaler.models import LeaseRow, ReplicaRow


def fair_share(targets: int, replicas: int) -> int:
    """How many targets one replica may hold."""
    return math.ceil(targets / max(1, replicas))


class Leases:
    """The lease table, seen by one replica (``holder``)."""

    def __init__(self, session: AsyncSession, holder: str) -> None:
        self.session = session
        self.holder = holder

    async def acquire(self, targets: Sequence[str], now: datetime, ttl: timedelta) -> set[str]:
        """The targets this replica owns now, among ``targets``."""
        expires = now + ttl
        await self.session.execute(
            insert(ReplicaRow)
            .values(holder=self.holder, seen_at=now)
            .on_conflict_do_update(index_elements=[ReplicaRow.holder], set_={"seen_at": now})
        )
        live = select(ReplicaRow.holder).where(ReplicaRow.seen_at > now - ttl)
        replicas = len((await self.session.execute(live)).all())
        share = fair_share(len(targets), replicas)
        renewed = await self.session.execute(
            update(LeaseRow)
            .where(LeaseRow.holder == self.holder, LeaseRow.target.in_(targets))
            .values(expires_at=expires)
            .returning(LeaseRow.target)
        )
        owned = set(renewed.scalars())
        if len(owned) > share:  # give back the surplus for the others to take
            surplus = sorted(owned)[share:]
            await self.session.execute(
                delete(LeaseRow).where(LeaseRow.target.in_(surplus), LeaseRow.holder == self.holder)
            )
            owned -= set(surplus)
        room = share - len(owned)
        if room > 0:
            owned |= await self._take([t for t in targets if t not in owned], room, now, expires)
        return owned

    async def _take(
        self, candidates: Sequence[str], room: int, now: datetime, expires: datetime
    ) -> set[str]:
        if not candidates:
            return set()
        taken = set()
        for start in range(0, len(candidates), 1000):
            chunk = candidates[start : start + 1000]
            statement = insert(LeaseRow).values(
                [{"target": t, "holder": self.holder, "expires_at": expires} for t in chunk]
            )
            upsert = statement.on_conflict_do_update(
                index_elements=[LeaseRow.target],
                set_={"holder": self.holder, "expires_at": expires},
                where=LeaseRow.expires_at < now,
            ).returning(LeaseRow.target)
            taken |= set((await self.session.execute(upsert)).scalars())
            if len(taken) >= room:
                break
        if len(taken) > room:  # took more than the share in the last chunk: give some back
            extra = sorted(taken)[room:]
            await self.session.execute(
                delete(LeaseRow).where(LeaseRow.target.in_(extra), LeaseRow.holder == self.holder)
            )
            taken -= set(extra)
        return taken

    async def release_all(self) -> None:
        """Give back every lease (a clean shutdown hands over at once)."""
        await self.session.execute(delete(LeaseRow).where(LeaseRow.holder == self.holder))
        await self.session.execute(delete(ReplicaRow).where(ReplicaRow.holder == self.holder))
