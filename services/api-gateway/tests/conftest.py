"""The registry and the gateway running in-process against the session's PostgreSQL and NATS."""

from __future__ import annotations

import hashlib
import io
import tarfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import cogplane.registry
from cogplane.common.bus import Bus
from cogplane.common.contracts import accounts as c
from cogplane.common.contracts import models as m
from cogplane.common.contracts.base import EVENTS_STREAM
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres
from cogplane.common.testing.apps import running
from cogplane.common.testing.fixtures import migrate_service
from cogplane.common.testing.wait import eventually
from cogplane.gateway.app import create_app as create_gateway
from cogplane.gateway.config import GatewaySettings
from cogplane.registry.app import create_app as create_registry
from cogplane.registry.bootstrap import bootstrap
from cogplane.registry.catalog.consumers import BUILD_CONSUMER
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


PUSH_MAX_BYTES = 64 * 1024


@pytest.fixture(scope="session")
async def small_push_gateway(
    postgres: EmbeddedPostgres, nats_server: EmbeddedNats, registry: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """A second gateway that takes pushes of at most ``PUSH_MAX_BYTES``."""
    settings = GatewaySettings(
        database_url=postgres.url,
        nats_url=nats_server.url,
        port=0,
        max_body_bytes=MAX_BODY_BYTES,
        push_max_bytes=PUSH_MAX_BYTES,
    )
    async with running(create_gateway(settings)) as client:
        yield client


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


GZIP = "application/gzip"


class Runner:
    """The tests in the runner's place: they push through the gateway, then report the build.

    A runner's contract with the registry is the build events: ``BuildLogged`` chunks and one
    ``BuildFinished``, published on the bus and consumed by the registry's durable consumer.
    """

    def __init__(self, gateway: httpx.AsyncClient, bus: Bus) -> None:
        self.gateway = gateway
        self.bus = bus

    @staticmethod
    def tarball(files: dict[str, bytes] | None = None) -> bytes:
        """A gzip'd tar of a tiny Cog project (unique content unless ``files`` is given)."""
        files = files or {
            "cog.yaml": b'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\n',
            "predict.py": f"# {uuid.uuid4()}\n".encode(),
        }
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    @staticmethod
    def version(**changes: Any) -> m.BuiltVersion:
        """What a successful build could have produced (a fresh version id unless given)."""
        fields: dict[str, Any] = {
            "id": hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
            "cog_version": "0.13.7",
            "openapi_schema": {
                "openapi": "3.0.2",
                "components": {
                    "schemas": {
                        "Input": {"type": "object", "properties": {"text": {"type": "string"}}},
                        "Output": {"type": "string"},
                    }
                },
            },
            "python_version": "3.11",
            "predict": "predict.py:Predictor",
            "env_key": hashlib.sha256(b"env").hexdigest(),
            "source_digest": hashlib.sha256(b"source").hexdigest(),
        }
        return m.BuiltVersion(**(fields | changes))

    async def push(
        self, token: str, model: str, content: bytes | None = None, content_type: str = GZIP
    ) -> httpx.Response:
        """POST a project archive to ``model`` ("owner/name"), as ``cogplane push`` does."""
        return await self.gateway.post(
            f"/v1/models/{model}/builds",
            content=self.tarball() if content is None else content,
            headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
        )

    async def log(self, build_id: str, seq: int, text: str) -> None:
        await self.bus.publish(m.BuildLogged(build_id=build_id, seq=seq, text=text))

    async def finish(
        self, build_id: str, version: m.BuiltVersion | None = None, error: str | None = None
    ) -> None:
        event = m.BuildFinished(
            build_id=build_id, version=version, error=error, duration_seconds=1.5
        )
        await self.bus.publish(event)

    async def settled(self, timeout: float = 10) -> None:
        """Wait until the registry has handled (acked) every build event published so far."""

        async def done() -> bool:
            info = await self.bus.js.consumer_info(EVENTS_STREAM, BUILD_CONSUMER)
            return bool(info.num_pending == 0 and info.num_ack_pending == 0)

        await eventually(done, timeout=timeout)

    async def build(self, token: str, build_id: str, logs_offset: int = 0) -> dict[str, Any]:
        response = await self.gateway.get(
            f"/v1/builds/{build_id}",
            params={"logs_offset": logs_offset},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def finished(self, token: str, build_id: str) -> dict[str, Any]:
        """Poll the build, as ``cogplane push`` does, until it is no longer building."""

        async def probe() -> dict[str, Any] | None:
            build = await self.build(token, build_id)
            return build if build["status"] != "building" else None

        return await eventually(probe, timeout=10)

    async def release(
        self,
        token: str,
        model: str,
        version: m.BuiltVersion | None = None,
        content: bytes | None = None,
    ) -> dict[str, Any]:
        """Push ``model`` and build it into ``version``; the build once ready."""
        pushed = await self.push(token, model, content)
        assert pushed.status_code == 202, pushed.text
        await self.finish(pushed.json()["id"], version or self.version())
        build = await self.finished(token, pushed.json()["id"])
        assert build["status"] == "ready", build
        return build


@pytest.fixture(scope="session")
def runner(gateway: httpx.AsyncClient, bus: Bus) -> Runner:
    """Push through the gateway and report builds as a runner would."""
    return Runner(gateway, bus)
