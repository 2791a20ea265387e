"""The gateway's health endpoints and its API documentation."""

from __future__ import annotations

import httpx

V1_PATHS = {
    "/v1/account": {"get"},
    "/v1/tokens": {"get", "post"},
    "/v1/tokens/{token_id}": {"delete"},
    "/v1/users": {"post"},
    "/v1/organizations": {"get", "post"},
    "/v1/organizations/{organization}/members": {"get", "post"},
    "/v1/organizations/{organization}/members/{username}": {"delete"},
    "/v1/hardware": {"get"},
    "/v1/models": {"get", "post"},
    "/v1/models/{owner}/{name}": {"get", "patch", "delete"},
    "/v1/models/{owner}/{name}/versions": {"get"},
    "/v1/models/{owner}/{name}/versions/{version_id}": {"get", "delete"},
    "/v1/models/{owner}/{name}/builds": {"post"},
    "/v1/builds/{build_id}": {"get"},
    "/v1/predictions": {"get", "post"},
    "/v1/models/{owner}/{name}/predictions": {"post"},
    "/v1/predictions/{prediction_id}": {"get"},
    "/v1/predictions/{prediction_id}/cancel": {"post"},
    "/v1/predictions/{prediction_id}/stream": {"get"},
    "/v1/webhooks/default/secret": {"get"},
    "/v1/files": {"get", "post"},
    "/v1/files/{file_id}": {"get", "delete"},
    "/v1/files/{file_id}/download": {"get"},
    "/v1/deployments": {"get", "post"},
    "/v1/deployments/{owner}/{name}": {"get", "patch", "delete"},
    "/v1/deployments/{owner}/{name}/releases": {"get"},
    "/v1/deployments/{owner}/{name}/predictions": {"post"},
    "/v1/deployments/{owner}/{name}/instances": {"get"},
    "/v1/deployments/{owner}/{name}/metrics": {"get"},
    "/v1/deployments/{owner}/{name}/decisions": {"get"},
    "/v1/usage": {"get"},
    "/v1/billing/estimate": {"get"},
}


async def test_livez(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/livez")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "api-gateway"}


async def test_readyz(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "api-gateway", "checks": {"nats": "ok"}}


async def test_the_registry_behind_it_is_ready(registry: httpx.AsyncClient) -> None:
    response = await registry.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"nats": "ok", "database": "ok"}


async def test_openapi_lists_the_v1_paths(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/openapi.json")

    assert response.status_code == 200
    spec = response.json()
    assert spec["info"]["title"] == "Cogplane API"
    v1 = {path: set(ops) for path, ops in spec["paths"].items() if path.startswith("/v1/")}
    assert v1 == V1_PATHS
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("description") or operation.get("summary"), (method, path)


async def test_docs_are_html(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
