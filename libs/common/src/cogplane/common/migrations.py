"""Alembic, driven from code: each service keeps its migrations and version table in its schema."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(script_location: Path, database_url: str, schema: str) -> Config:
    """An Alembic config for one service, without any ini file."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["schema"] = schema
    return config


def upgrade(script_location: Path, database_url: str, schema: str, revision: str = "head") -> None:
    """Apply the service's migrations up to ``revision``."""
    command.upgrade(alembic_config(script_location, database_url, schema), revision)


def revision(script_location: Path, database_url: str, schema: str, message: str) -> None:
    """Autogenerate a new revision from the difference between models and the database."""
    config = alembic_config(script_location, database_url, schema)
    command.revision(config, message=message, autogenerate=True)


def check(script_location: Path, database_url: str, schema: str) -> None:
    """Raise if the service's models and its migrations disagree."""
    command.check(alembic_config(script_location, database_url, schema))


def run_env(context: Any, metadata: MetaData) -> None:
    """The body of a service's ``migrations/env.py`` (async engine, version table in its schema).

    Args:
        context: ``alembic.context``, the proxy of the running ``EnvironmentContext``.
        metadata: The service's metadata.
    """
    config = context.config
    schema: str = config.attributes.get("schema") or metadata.schema or "public"
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None

    def migrate(connection: Connection) -> None:
        # Replicas migrating at start-up take turns; the lock ends with the transaction.
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=lambda name, kind, _: kind != "schema" or name == schema,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(migrate)
        finally:
            await engine.dispose()

    asyncio.run(main())
