"""The registry running in-process against the session's PostgreSQL and NATS."""

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
from cogplane.registry.app import create_app
from cogplane.registry.bootstrap import bootstrap
from cogplane.registry.config import RegistrySettings
from cogplane.registry.models import SCHEMA

# Someone the registry knows: the secret of one of their tokens and what verifying it returns.
Actor = tuple[str, c.Caller]
NewAdmin = Callable[[], Awaitable[Actor]]
NewUser = Callable[[], Awaitable[Actor]]


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
    async with running(create_app(registry_settings)) as client:
        yield client


@pytest.fixture(scope="session")
async def bus(nats_server: EmbeddedNats, registry: httpx.AsyncClient) -> AsyncIterator[Bus]:
    """A client connection, as the gateway would have, with the registry serving."""
    client = Bus(nats_server.url, "registry-tests", timedelta(seconds=5))
    await client.connect()
    yield client
    await client.close()


@pytest.fixture(scope="session")
async def db(registry_settings: RegistrySettings) -> AsyncIterator[AsyncEngine]:
    """Direct access to the registry's tables, to check what is (not) stored."""
    engine = create_async_engine(registry_settings.database_url.get_secret_value())
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def new_admin(registry_settings: RegistrySettings, bus: Bus) -> NewAdmin:
    """Bootstrap a fresh administrator who owns a fresh organization."""

    async def make() -> Actor:
        result = await bootstrap(registry_settings, unique("admin"), unique("org"))
        token = str(result["token"])
        return token, await bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=token))

    return make


@pytest.fixture(scope="session")
async def root(new_admin: NewAdmin) -> Actor:
    """An administrator shared by the tests that only need someone to create users."""
    return await new_admin()


@pytest.fixture(scope="session")
def new_user(bus: Bus, root: Actor) -> NewUser:
    """Create a plain (not admin) user, as an administrator would, with one token."""

    async def make() -> Actor:
        request = c.CreateUser(account_id=root[1].account.id, username=unique("user"), name="U")
        account = await bus.request(c.CREATE_USER, request)
        created = await bus.request(
            c.CREATE_TOKEN, c.CreateToken(account_id=account.id, name="first")
        )
        return created.token, await bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=created.token))

    return make
