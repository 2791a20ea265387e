"""The registry running in-process against the session's PostgreSQL and NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

import cogplane.registry
from cogplane.common.bus import Bus
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres
from cogplane.common.testing.apps import running
from cogplane.common.testing.fixtures import migrate_service
from cogplane.registry.app import create_app
from cogplane.registry.config import RegistrySettings
from cogplane.registry.models import SCHEMA


@pytest.fixture(scope="session")
def registry_settings(
    postgres: EmbeddedPostgres, nats_server: EmbeddedNats, migrated_schemas: set[str]
) -> RegistrySettings:
    migrate_service(postgres, migrated_schemas, cogplane.registry.__file__, SCHEMA)
    return RegistrySettings(database_url=postgres.url, nats_url=nats_server.url, port=0)


@pytest.fixture(scope="session")
async def registry(registry_settings: RegistrySettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(registry_settings)) as client:
        yield client


@pytest.fixture(scope="session")
async def bus(nats_server: EmbeddedNats, registry: httpx.AsyncClient) -> AsyncIterator[Bus]:
    """A client connection, as the gateway would have, with the registry serving."""
    client = Bus(nats_server.url, "registry-tests", timedelta(seconds=5))
    await client.connect()
    yield client
    await client.close()
