"""The registry and the gateway running in-process against the session's PostgreSQL and NATS."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import cogplane.registry
from cogplane.common.bus import Bus
from cogplane.common.contracts import accounts as c
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres
from cogplane.common.testing.apps import running
from cogplane.common.testing.fixtures import migrate_service
from cogplane.gateway.app import create_app as create_gateway
from cogplane.gateway.config import GatewaySettings
from cogplane.registry.app import create_app as create_registry
from cogplane.registry.bootstrap import bootstrap
from cogplane.registry.config import RegistrySettings
from cogplane.registry.models import SCHEMA

MAX_BODY_BYTES = 4096

# Someone the registry knows: the secret of one of their tokens and what verifying it returns.
Actor = tuple[str, c.Caller]
NewActor = Callable[[], Awaitable[Actor]]


def unique(prefix: str) -> str:
    """A username no other test uses (the database lives for the whole session)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def registry_settings(
    postgres: EmbeddedPostgres, nats_server: EmbeddedNats, migrated_schemas: set[str]
) -> RegistrySettings:
    migrate_service(postgres, migrated_schemas, cogplane.registry.__file__, SCHEMA)
    return RegistrySettings(database_url=postgres.url, nats_url=nats_server.url, port=0)


@pytest.fixture(scope="session")
async def registry(registry_settings: RegistrySettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_registry(registry_settings)) as client:
        yield client


@pytest.fixture(scope="session")
async def gateway(
    postgres: EmbeddedPostgres, nats_server: EmbeddedNats, registry: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the gateway, with the registry answering behind it."""
    settings = GatewaySettings(
        database_url=postgres.url,
        nats_url=nats_server.url,
        port=0,
        max_body_bytes=MAX_BODY_BYTES,
    )
    async with running(create_gateway(settings)) as client:
        yield client


@pytest.fixture(scope="session")
async def bus(nats_server: EmbeddedNats, registry: httpx.AsyncClient) -> AsyncIterator[Bus]:
    """A NATS connection of the tests' own, to set up what the public API cannot."""
    client = Bus(nats_server.url, "gateway-tests", timedelta(seconds=5))
    await client.connect()
    yield client
    await client.close()


@pytest.fixture(scope="session")
async def db(registry_settings: RegistrySettings) -> AsyncIterator[AsyncEngine]:
    """Direct access to the registry's tables, to check that nothing was written."""
    engine = create_async_engine(registry_settings.database_url.get_secret_value())
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def new_admin(registry_settings: RegistrySettings, bus: Bus) -> NewActor:
    """Bootstrap a fresh administrator who owns a fresh organization."""

    async def make() -> Actor:
        result = await bootstrap(registry_settings, unique("admin"), unique("org"))
        token = str(result["token"])
        return token, await bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=token))

    return make


@pytest.fixture(scope="session")
async def root(new_admin: NewActor) -> Actor:
    """An administrator shared by the tests that only need someone to create users."""
    return await new_admin()


@pytest.fixture(scope="session")
def new_user(bus: Bus, root: Actor) -> NewActor:
    """Create a plain (not admin) user with one token (the API has no way to log in)."""

    async def make() -> Actor:
        request = c.CreateUser(account_id=root[1].account.id, username=unique("user"), name="U")
        account = await bus.request(c.CREATE_USER, request)
        created = await bus.request(
            c.CREATE_TOKEN, c.CreateToken(account_id=account.id, name="first")
        )
        return created.token, await bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=created.token))

    return make
