"""``GET /v1/webhooks/default/secret``, and webhooks that validate with the secret it serves."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from replicate.webhook import Webhooks, WebhookSigningSecret
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import cogplane.scheduler
from cogplane.common.bus import Bus
from cogplane.common.contracts import accounts as c
from cogplane.common.contracts import predictions as p
from cogplane.common.contracts.base import new_id
from cogplane.common.contracts.models import Viewer
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres
from cogplane.common.testing.apps import running
from cogplane.common.testing.fixtures import migrate_service
from cogplane.common.testing.served import served
from cogplane.common.testing.wait import eventually
from cogplane.scheduler.app import create_app as create_scheduler
from cogplane.scheduler.config import SchedulerSettings
from cogplane.scheduler.models import SCHEMA

Actor = tuple[str, c.Caller]
MakeActor = Callable[[], Awaitable[Actor]]
SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{43}=")


@pytest.fixture(scope="module")
def scheduler_settings(
    postgres: EmbeddedPostgres, nats_server: EmbeddedNats, migrated_schemas: set[str]
) -> SchedulerSettings:
    migrate_service(postgres, migrated_schemas, cogplane.scheduler.__file__, SCHEMA)
    return SchedulerSettings(database_url=postgres.url, nats_url=nats_server.url, port=0)


@pytest.fixture(scope="module")
async def webhook_scheduler(scheduler_settings: SchedulerSettings) -> AsyncIterator[None]:
    """A scheduler answering on the session's NATS, next to the gateway and the registry."""
    async with running(create_scheduler(scheduler_settings)):
        yield


async def secret_of(gateway: httpx.AsyncClient, token: str) -> httpx.Response:
    return await gateway.get(
        "/v1/webhooks/default/secret", headers={"Authorization": f"Bearer {token}"}
    )


async def test_each_account_has_one_secret(
    gateway: httpx.AsyncClient, new_user: MakeActor, webhook_scheduler: None
) -> None:
    (alice, _), (bob, _) = await new_user(), await new_user()
    first = await secret_of(gateway, alice)
    assert first.status_code == 200, first.text
    assert set(first.json()) == {"key"}
    key = first.json()["key"]
    assert SECRET.fullmatch(key), key
    assert len(base64.b64decode(key.split("_")[1])) == 32
    assert (await secret_of(gateway, alice)).json() == {"key": key}
    assert (await secret_of(gateway, bob)).json()["key"] != key


async def test_the_secret_needs_a_token(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/v1/webhooks/default/secret")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_webhooks_validate_with_the_served_secret(
    gateway: httpx.AsyncClient,
    new_user: MakeActor,
    bus: Bus,
    webhook_scheduler: None,
    postgres: EmbeddedPostgres,
) -> None:
    received: list[httpx.Request] = []

    async def hook(request: Request) -> Response:
        body = await request.body()
        received.append(
            httpx.Request("POST", str(request.url), headers=request.headers, content=body)
        )
        return Response(status_code=204)

    token, caller = await new_user()
    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    async with served(app) as url:
        viewer = Viewer(account_id=caller.account.id, username=caller.account.username)
        version = p.VersionSpec(
            version_id=uuid.uuid4().hex * 2,
            owner=caller.account.username,
            name="echo",
            predict="predict.py:Predictor",
            env_key="e" * 64,
            python_version="3.11",
            cog_version="0.13.7",
            source_object="s",
            source_digest="d" * 64,
            openapi_schema={},
        )
        submit = p.SubmitPrediction(
            viewer=viewer,
            version=version,
            input={},
            webhook=f"{url}/hook",
            webhook_events_filter=["completed"],
        )
        record = await bus.request(p.SUBMIT_PREDICTION, submit)
        instance_id = new_id()
        engine = create_async_engine(postgres.url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE scheduler.predictions SET instance_id = :i WHERE id = :p"),
                    {"i": instance_id, "p": record.id},
                )
        finally:
            await engine.dispose()
        update = p.PredictionUpdated(
            prediction_id=record.id, instance_id=instance_id, seq=0, status="succeeded", output="hi"
        )
        await bus.publish(update)

        async def delivered() -> bool:
            return bool(received)

        await eventually(delivered, timeout=10)
    secret = WebhookSigningSecret(**(await secret_of(gateway, token)).json())
    Webhooks.validate(request=received[0], secret=secret)  # the Python client's own check
    other = WebhookSigningSecret(**(await secret_of(gateway, (await new_user())[0])).json())
    with pytest.raises(ValueError, match="invalid"):
        Webhooks.validate(request=received[0], secret=other)
