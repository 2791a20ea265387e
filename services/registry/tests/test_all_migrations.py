"""Every service's migrations apply on an empty schema and match its models (``alembic check``)."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from cogplane.common import migrations
from cogplane.common.embedded import EmbeddedPostgres
from cogplane.common.testing.fixtures import migrate_service

SERVICES = ["cogplane.registry", "cogplane.scheduler", "cogplane.autoscaler", "cogplane.billing"]


@pytest.mark.parametrize("package", SERVICES)
def test_migrations_match_models(
    postgres: EmbeddedPostgres, migrated_schemas: set[str], package: str
) -> None:
    module = importlib.import_module(package)
    models = importlib.import_module(f"{package}.models")
    assert module.__file__ is not None
    schema: str = models.SCHEMA
    script_location = Path(module.__file__).parent / "migrations"

    migrate_service(postgres, migrated_schemas, module.__file__, schema)
    migrations.check(script_location, postgres.url, schema)

    expected = {t.name for t in models.Base.metadata.tables.values()} | {"alembic_version"}
    assert asyncio.run(table_names(postgres.url, schema)) == expected


async def table_names(url: str, schema: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: inspect(c).get_table_names(schema=schema))
    finally:
        await engine.dispose()
    return set(names)
