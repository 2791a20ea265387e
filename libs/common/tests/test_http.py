"""The shared HTTP layer: problem+json for every kind of bad request."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from cogplane.common.errors import Conflict, InvalidInput
from cogplane.common.http import BodyRule, RequestGuard, install_error_handlers


class Thing(BaseModel):
    name: str
    size: int


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestGuard, rules=[BodyRule("", 100)])
    seen: list[Thing] = []

    @app.post("/things")
    async def create(thing: Thing) -> dict[str, int]:
        seen.append(thing)
        return {"count": len(seen)}

    @app.get("/conflict")
    async def conflict() -> None:
        raise Conflict("already there")

    @app.get("/invalid")
    async def invalid() -> None:
        raise InvalidInput(
            [{"type": "required", "field": "input.prompt", "description": "prompt is required"}]
        )

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    app.state.seen = seen
    return app


@pytest.fixture
async def client() -> httpx.AsyncClient:
    app = make_app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


async def test_malformed_json_names_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/things", content=b"{nope", headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422)
    assert body["invalid_fields"][0]["field"] == "body"  # type: ignore[index]


async def test_wrong_field_type_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/things", json={"name": "a", "size": "big"})
    body = assert_problem(response, 422)
    assert [f["field"] for f in body["invalid_fields"]] == ["size"]  # type: ignore[union-attr]


async def test_missing_field_is_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/things", json={"size": 1})
    body = assert_problem(response, 422)
    assert "name" in str(body["detail"])


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/things", content=b"name=a", headers={"content-type": "text/plain"}
    )
    assert_problem(response, 415)


async def test_oversized_body_is_413_and_never_reaches_the_handler(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/things", json={"name": "x" * 200, "size": 1})
    assert_problem(response, 413)
    assert client._transport.app.state.seen == []  # type: ignore[attr-defined]


async def test_oversized_streamed_body_without_length_is_413(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b'{"name": "' + b"x" * 20

    response = await client.post(
        "/things", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nowhere"), 404)
    assert_problem(await client.delete("/things"), 405)


async def test_domain_errors_keep_their_status_and_extras(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/conflict"), 409)
    body = assert_problem(await client.get("/invalid"), 422)
    assert body["invalid_fields"] == [
        {"type": "required", "field": "input.prompt", "description": "prompt is required"}
    ]
    assert body["detail"] == "- input.prompt: prompt is required\n"


async def test_unexpected_errors_do_not_leak_internals(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/boom"), 500)
    assert "secret" not in str(body)


async def test_a_good_request_passes(client: httpx.AsyncClient) -> None:
    response = await client.post("/things", json={"name": "a", "size": 1})
    assert response.status_code == 200
    assert response.json() == {"count": 1}
