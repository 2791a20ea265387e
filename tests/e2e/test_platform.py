"""`make dev`'s platform: the development account, docs, the official client, NATS handlers."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import replicate

from cogplane.cli.devstack import SERVICES, DevStack, read_env_file
from cogplane.common.bus import Bus
from cogplane.common.contracts.base import Empty
from cogplane.common.contracts.billing import INGEST_STATUS
from cogplane.common.contracts.runners import LIST_RUNNERS
from cogplane.common.testing.wait import eventually

pytestmark = pytest.mark.e2e


def test_dev_env_points_clients_at_the_gateway(stack: DevStack) -> None:
    env = read_env_file(stack.env_file)
    assert env == {
        "COGPLANE_URL": stack.gateway_url,
        "COGPLANE_TOKEN": stack.token,
        "REPLICATE_BASE_URL": stack.gateway_url,
        "REPLICATE_API_TOKEN": stack.token,
    }
    assert stack.token is not None
    assert stack.token.startswith("r8_")
    assert len(stack.token) == 40


def test_account_of_the_development_token(stack: DevStack, auth: dict[str, str]) -> None:
    response = httpx.get(f"{stack.gateway_url}/v1/account", headers=auth)
    assert response.status_code == 200
    assert response.json() == {
        "type": "user",
        "username": "dev",
        "name": "Development user",
        "github_url": None,
    }


def test_official_replicate_client_reads_the_account(stack: DevStack) -> None:
    client = replicate.Client(api_token=stack.token, base_url=stack.gateway_url)
    account = client.accounts.current()
    assert (account.type, account.username, account.name) == ("user", "dev", "Development user")


def test_official_client_sees_401_as_replicate_error(stack: DevStack) -> None:
    client = replicate.Client(api_token="r8_" + "x" * 37, base_url=stack.gateway_url)
    with pytest.raises(replicate.exceptions.ReplicateError) as caught:
        client.accounts.current()
    assert caught.value.status == 401
    assert caught.value.detail == "You did not pass a valid authentication token"


@pytest.mark.parametrize("service", [svc.name for svc in SERVICES])
def test_each_service_serves_its_docs_and_health(stack: DevStack, service: str) -> None:
    base = stack.url(service)
    docs = httpx.get(f"{base}/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    schema = httpx.get(f"{base}/openapi.json").json()
    assert {"/livez", "/readyz"} <= set(schema["paths"])
    assert httpx.get(f"{base}/livez").json()["service"] == service
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["nats"] == "ok"


def test_gateway_documents_the_account_api(stack: DevStack) -> None:
    paths = httpx.get(f"{stack.gateway_url}/openapi.json").json()["paths"]
    assert {"/v1/account", "/v1/tokens", "/v1/tokens/{token_id}", "/v1/organizations"} <= set(paths)


async def test_runner_announces_itself_and_billing_takes_in_events(stack: DevStack) -> None:
    bus = Bus(stack.nats.url, "e2e", timedelta(seconds=5))
    await bus.connect()
    try:

        async def runner_listed() -> list[object]:
            nodes = (await bus.request(LIST_RUNNERS, Empty())).results
            return [n for n in nodes if n.online]

        nodes = await eventually(runner_listed)
        capacity = {(c.sku, c.simulated) for c in nodes[0].capacity}  # type: ignore[attr-defined]
        assert {("cpu", False), ("gpu-t4", True)} <= capacity

        async def events_recorded() -> int:
            return (await bus.request(INGEST_STATUS, Empty())).events_recorded

        assert await eventually(events_recorded) > 0
    finally:
        await bus.close()
