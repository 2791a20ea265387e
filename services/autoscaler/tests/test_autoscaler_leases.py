"""Leases in PostgreSQL: one replica per target, fair shares, and takeover after a death."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import delete

import cogplane.autoscaler
from cogplane.autoscaler.config import AutoscalerSettings
from cogplane.autoscaler.leases import Leases, fair_share
from cogplane.autoscaler.models import SCHEMA, LeaseRow, ReplicaRow
from cogplane.common.db import Database, utcnow
from cogplane.common.embedded import EmbeddedPostgres
from cogplane.common.testing.fixtures import migrate_service

TTL = timedelta(seconds=3)


@pytest.fixture(scope="module")
def settings(postgres: EmbeddedPostgres, migrated_schemas: set[str]) -> AutoscalerSettings:
    migrate_service(postgres, migrated_schemas, cogplane.autoscaler.__file__, SCHEMA)
    return AutoscalerSettings(database_url=postgres.url, port=0)


@pytest.fixture(scope="module")
async def db(settings: AutoscalerSettings) -> AsyncIterator[Database]:
    database = Database(settings, "lease-tests")
    yield database
    await database.close()


@pytest.fixture(autouse=True)
async def no_replicas(db: Database) -> None:
    """Each test starts with no replica known (replicas of earlier tests look alive)."""
    async with db.unit_of_work() as session:
        await session.execute(delete(ReplicaRow))
        await session.execute(delete(LeaseRow))


def targets(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"deployment:{tag}-{i}" for i in range(n)]


async def acquire(db: Database, holder: str, names: list[str], at_offset: float = 0) -> set[str]:
    async with db.unit_of_work() as session:
        now = utcnow() + timedelta(seconds=at_offset)
        return await Leases(session, holder).acquire(names, now, TTL)


def test_fair_share() -> None:
    assert fair_share(10, 3) == 4
    assert fair_share(0, 2) == 0
    assert fair_share(5, 0) == 5


async def test_each_target_has_exactly_one_owner_and_shares_even_out(db: Database) -> None:
    names = targets(10)
    a, b = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    first = await acquire(db, a, names)
    assert first == set(names)  # alone: it takes everything
    second = await acquire(db, b, names)
    assert second == set()  # nothing free yet; now two replicas are live
    first = await acquire(db, a, names)
    assert len(first) == 5  # gives back its surplus
    second = await acquire(db, b, names)
    assert len(second) == 5
    assert first.isdisjoint(second)
    assert first | second == set(names)
    assert await acquire(db, a, names) == first  # renewals keep the same targets


async def test_a_dead_replicas_targets_are_taken_over_after_the_ttl(db: Database) -> None:
    names = targets(4)
    dead, alive = f"dead-{uuid.uuid4().hex[:6]}", f"alive-{uuid.uuid4().hex[:6]}"
    assert await acquire(db, dead, names) == set(names)
    assert await acquire(db, alive, names) == set()  # still leased
    # The dead one never renews: once its leases and its heartbeat expire, all move over.
    taken = await acquire(db, alive, names, at_offset=TTL.total_seconds() + 0.5)
    assert taken == set(names)


async def test_release_all_hands_over_at_once(db: Database) -> None:
    names = targets(3)
    leaving, staying = f"l-{uuid.uuid4().hex[:6]}", f"s-{uuid.uuid4().hex[:6]}"
    assert await acquire(db, leaving, names) == set(names)
    async with db.unit_of_work() as session:
        await Leases(session, leaving).release_all()
    assert await acquire(db, staying, names) == set(names)
