"""Database access: one async engine per service, one unit of work per request or message."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from cogplane.common.config import DatabaseSettings
from cogplane.common.errors import Unavailable

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def schema_metadata(schema: str) -> MetaData:
    """Metadata for a service's own Postgres schema."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


# Every timestamp is timezone-aware; a service's ``Base`` sets this as its ``type_annotation_map``.
TYPE_ANNOTATION_MAP: dict[Any, Any] = {datetime: DateTime(timezone=True)}


# Errors that mean "cannot talk to PostgreSQL" rather than "this statement is wrong".
_UNREACHABLE = (OperationalError, InterfaceError, OSError)


async def _rollback_quietly(session: AsyncSession) -> None:
    with contextlib.suppress(*_UNREACHABLE):  # gone: PostgreSQL rolled back by itself
        await session.rollback()


class Database:
    """A service's engine and session factory.

    Args:
        settings: Where the database is.
        application_name: Shown in ``pg_stat_activity``.
    """

    def __init__(self, settings: DatabaseSettings, application_name: str) -> None:
        self.engine: AsyncEngine = create_async_engine(
            settings.database_url.get_secret_value(),
            pool_size=settings.database_pool_size,
            # No ping per checkout (a round trip on every unit of work): a connection found dead
            # fails that one unit of work with 503 and SQLAlchemy then renews the whole pool.
            pool_pre_ping=False,
            connect_args={"server_settings": {"application_name": application_name}, "timeout": 5},
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A session that commits when the block succeeds and rolls back when it raises."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except _UNREACHABLE as exc:
                await _rollback_quietly(session)
                raise Unavailable("The database is unavailable; try again shortly") from exc
            except BaseException:
                await _rollback_quietly(session)
                raise

    async def ping(self, timeout: float = 2.0) -> None:
        """Raise unless the database answers ``SELECT 1`` within ``timeout`` seconds."""
        async with asyncio.timeout(timeout), self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def migrations_dir(package_file: str) -> Path:
    """The ``migrations`` folder next to a service package's ``__init__``."""
    return Path(package_file).parent / "migrations"
