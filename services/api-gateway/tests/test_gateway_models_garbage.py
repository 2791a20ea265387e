"""Garbage requests to the model, version, build and hardware endpoints: each gets a precise
problem+json and changes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cogplane.common.contracts import accounts as c

Actor = tuple[str, c.Caller]
MakeActor = Callable[[], Awaitable[Actor]]
Runner = Any  # the conftest's Runner (a test module cannot import the conftest)
MAX_BODY_BYTES = 4096  # the conftest's gateway limit for JSON bodies
PUSH_MAX_BYTES = 64 * 1024  # the conftest's small_push_gateway limit for pushes


@dataclass(frozen=True)
class World:
    """A user with a private model that has a version, and a public model."""

    token: str
    owner: str
    private: str
    public: str
    version: str
    build: str

    def fill(self, path: str) -> str:
        return path.format(
            owner=self.owner,
            private=self.private,
            public=self.public,
            version=self.version,
            build=self.build,
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_world(gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner) -> World:
    token, me = await new_user()
    owner = me.account.username
    refs = []
    for visibility in ("private", "public"):
        name = f"garbage-{uuid.uuid4().hex[:8]}"
        body = {"owner": owner, "name": name, "visibility": visibility, "hardware": "cpu"}
        response = await gateway.post(
            "/v1/models", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 201, response.text
        refs.append(f"{owner}/{name}")
    build = await runner.release(token, refs[0])
    return World(token, owner, refs[0], refs[1], build["version"], build["id"])


@pytest.fixture(scope="module")
async def world(gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner) -> World:
    return await make_world(gateway, new_user, runner)


async def snapshot(gateway: httpx.AsyncClient, db: AsyncEngine, world: World) -> dict[str, Any]:
    """What a garbage request must not change, seen through the API and in the tables."""
    models = (await gateway.get("/v1/models", headers=world.headers)).json()
    private = (await gateway.get(f"/v1/models/{world.private}", headers=world.headers)).json()
    public = (await gateway.get(f"/v1/models/{world.public}", headers=world.headers)).json()
    versions = await gateway.get(f"/v1/models/{world.private}/versions", headers=world.headers)
    build = (await gateway.get(f"/v1/builds/{world.build}", headers=world.headers)).json()
    async with db.connect() as conn:
        rows = {
            table: await conn.scalar(text(f"SELECT count(*) FROM registry.{table}"))  # noqa: S608 - our names
            for table in ("models", "versions", "builds", "build_logs")
        }
    return {
        "models": models,
        "private": private,
        "public": public,
        "versions": versions.json(),
        "build": build,
        "rows": rows,
    }


def assert_problem(response: httpx.Response, status: int, title: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"] == title
    assert problem["detail"]
    return problem


# Endpoints that take a JSON body, each with a body it would accept (and act on).
BODY_ENDPOINTS: dict[str, tuple[str, str, Callable[[World], dict[str, Any]]]] = {
    "create-model": (
        "POST",
        "/v1/models",
        lambda w: {
            "owner": w.owner,
            "name": f"g-{uuid.uuid4().hex[:8]}",
            "visibility": "private",
            "hardware": "cpu",
        },
    ),
    "patch-model": (
        "PATCH",
        "/v1/models/{private}",
        lambda w: {"description": "changed", "visibility": "public", "hardware": "gpu-t4"},
    ),
}

JSON = {"content-type": "application/json"}
INVALID = "Input validation failed"
UNSUPPORTED = "Unsupported media type"
TOO_LARGE = "Payload too large"


async def _chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _padded(body: dict[str, Any]) -> bytes:
    """``body`` grown past the limit with whitespace, so it is still valid JSON."""
    valid = json.dumps(body).encode()
    return valid + b" " * (MAX_BODY_BYTES + 1 - len(valid))


def _form(body: dict[str, Any]) -> bytes:
    return "&".join(f"{k}={v}" for k, v in body.items()).encode()


@dataclass(frozen=True)
class Garbage:
    """How to spoil a valid body (httpx request arguments), and the problem that must come back."""

    spoil: Callable[[dict[str, Any]], dict[str, Any]]
    status: int
    title: str
    field: str | None = None


GARBAGE = {
    "malformed-json": Garbage(
        lambda b: {"content": json.dumps(b).encode()[:-1], "headers": JSON}, 422, INVALID, "body"
    ),
    "not-an-object": Garbage(
        lambda b: {"content": json.dumps([b]).encode(), "headers": JSON}, 422, INVALID, "body"
    ),
    "json-null": Garbage(lambda b: {"content": b"null", "headers": JSON}, 422, INVALID, "body"),
    "json-string": Garbage(lambda b: {"content": b'"x"', "headers": JSON}, 422, INVALID, "body"),
    "unknown-field": Garbage(lambda b: {"json": b | {"bogus": 1}}, 422, INVALID, "bogus"),
    "nul-in-description": Garbage(
        lambda b: {"json": b | {"description": "a\x00b"}}, 422, INVALID, "description"
    ),
    "nul-in-url": Garbage(
        lambda b: {"json": b | {"github_url": "https://x\x00"}}, 422, INVALID, "github_url"
    ),
    "text-plain": Garbage(
        lambda b: {"content": json.dumps(b).encode(), "headers": {"content-type": "text/plain"}},
        415,
        UNSUPPORTED,
    ),
    "gzip": Garbage(
        lambda b: {
            "content": json.dumps(b).encode(),
            "headers": {"content-type": "application/gzip"},
        },
        415,
        UNSUPPORTED,
    ),
    "form": Garbage(
        lambda b: {
            "content": _form(b),
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        415,
        UNSUPPORTED,
    ),
    "no-content-type": Garbage(
        lambda b: {"content": json.dumps(b).encode(), "headers": {}}, 415, UNSUPPORTED
    ),
    "oversized": Garbage(lambda b: {"content": _padded(b), "headers": JSON}, 413, TOO_LARGE),
    "oversized-streamed": Garbage(
        lambda b: {"content": _chunks(_padded(b)), "headers": JSON}, 413, TOO_LARGE
    ),
}


@pytest.mark.parametrize("endpoint", list(BODY_ENDPOINTS))
@pytest.mark.parametrize("kind", list(GARBAGE))
async def test_garbage_bodies(
    gateway: httpx.AsyncClient, db: AsyncEngine, world: World, endpoint: str, kind: str
) -> None:
    method, path, make_body = BODY_ENDPOINTS[endpoint]
    garbage = GARBAGE[kind]
    request = garbage.spoil(make_body(world))
    request["headers"] = request.get("headers", {}) | world.headers
    before = await snapshot(gateway, db, world)

    response = await gateway.request(method, world.fill(path), **request)

    problem = assert_problem(response, garbage.status, garbage.title)
    if garbage.field is not None:
        assert garbage.field in [f["field"] for f in problem["invalid_fields"]]
        assert f"- {garbage.field}: " in problem["detail"]
    assert await snapshot(gateway, db, world) == before


@pytest.mark.parametrize("endpoint", list(BODY_ENDPOINTS))
async def test_a_body_that_is_not_utf8_is_malformed_json(
    gateway: httpx.AsyncClient, db: AsyncEngine, world: World, endpoint: str
) -> None:
    method, path, _ = BODY_ENDPOINTS[endpoint]
    before = await snapshot(gateway, db, world)

    response = await gateway.request(
        method,
        world.fill(path),
        content=b'{"description": "\xff\xfe"}',
        headers=world.headers | JSON,
    )

    assert await snapshot(gateway, db, world) == before
    problem = assert_problem(response, 422, INVALID)
    assert [f["field"] for f in problem["invalid_fields"]] == ["body"]


@pytest.mark.parametrize("endpoint", list(BODY_ENDPOINTS))
async def test_the_valid_bodies_do_work(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner, endpoint: str
) -> None:
    """The control for the table above: unspoiled, the same bodies succeed."""
    fresh = await make_world(gateway, new_user, runner)
    method, path, make_body = BODY_ENDPOINTS[endpoint]

    response = await gateway.request(
        method, fresh.fill(path), json=make_body(fresh), headers=fresh.headers
    )

    assert response.status_code in (200, 201), response.text


async def test_a_push_streamed_past_the_limit_is_refused(
    small_push_gateway: httpx.AsyncClient, gateway: httpx.AsyncClient, db: AsyncEngine, world: World
) -> None:
    before = await snapshot(gateway, db, world)

    response = await small_push_gateway.post(
        f"/v1/models/{world.private}/builds",
        content=_chunks(b"\x1f\x8b" + b"x" * PUSH_MAX_BYTES, size=8192),
        headers=world.headers | {"content-type": "application/gzip"},
    )

    assert_problem(response, 413, TOO_LARGE)
    assert await snapshot(gateway, db, world) == before


async def test_a_push_at_the_limit_is_taken(
    small_push_gateway: httpx.AsyncClient, world: World
) -> None:
    response = await small_push_gateway.post(
        f"/v1/models/{world.private}/builds",
        content=_chunks(uuid.uuid4().bytes * (PUSH_MAX_BYTES // 16), size=8192),
        headers=world.headers | {"content-type": "application/gzip"},
    )

    assert response.status_code == 202, response.text


WRONG_METHODS = [
    ("PUT", "/v1/models"),
    ("DELETE", "/v1/models"),
    ("PATCH", "/v1/models"),
    ("POST", "/v1/models/{private}"),
    ("PUT", "/v1/models/{private}"),
    ("POST", "/v1/models/{private}/versions"),
    ("DELETE", "/v1/models/{private}/versions"),
    ("PATCH", "/v1/models/{private}/versions/{version}"),
    ("POST", "/v1/models/{private}/versions/{version}"),
    ("GET", "/v1/models/{private}/builds"),
    ("DELETE", "/v1/models/{private}/builds"),
    ("POST", "/v1/builds/{build}"),
    ("DELETE", "/v1/builds/{build}"),
    ("POST", "/v1/hardware"),
    ("DELETE", "/v1/hardware"),
]


@pytest.mark.parametrize(
    ("method", "path"), WRONG_METHODS, ids=[f"{m} {p}" for m, p in WRONG_METHODS]
)
async def test_wrong_method(
    gateway: httpx.AsyncClient, db: AsyncEngine, world: World, method: str, path: str
) -> None:
    before = await snapshot(gateway, db, world)

    response = await gateway.request(method, world.fill(path), headers=world.headers)

    assert_problem(response, 405, "Method not allowed")
    assert response.headers["allow"]
    assert method not in response.headers["allow"]
    assert await snapshot(gateway, db, world) == before


UNKNOWN_ROUTES = [
    ("GET", "/v1/models/{private}/extra"),
    ("GET", "/v1/models/onlyowner"),
    ("DELETE", "/v1/models/{private}/versions/{version}/extra"),
    ("GET", "/v1/builds"),
    ("GET", "/v1/builds/{build}/logs"),
    ("GET", "/v1/hardware/cpu"),
]


@pytest.mark.parametrize(
    ("method", "path"), UNKNOWN_ROUTES, ids=[f"{m} {p}" for m, p in UNKNOWN_ROUTES]
)
async def test_unknown_route(
    gateway: httpx.AsyncClient, db: AsyncEngine, world: World, method: str, path: str
) -> None:
    before = await snapshot(gateway, db, world)

    response = await gateway.request(method, world.fill(path), headers=world.headers)

    assert assert_problem(response, 404, "Not found") == {
        "title": "Not found",
        "detail": "The requested resource does not exist",
        "status": 404,
    }
    assert await snapshot(gateway, db, world) == before


NUL_PATHS = [
    ("GET", "/v1/models/%00/x", "owner"),
    ("GET", "/v1/models/{owner}/a%00b", "name"),
    ("PATCH", "/v1/models/{owner}/a%00b", "name"),
    ("DELETE", "/v1/models/%00/x", "owner"),
    ("GET", "/v1/models/{owner}/a%00/versions", "name"),
    ("GET", "/v1/models/{private}/versions/%00", "version_id"),
    ("DELETE", "/v1/models/{private}/versions/%00", "version_id"),
    ("POST", "/v1/models/%00/x/builds", "owner"),
    ("GET", "/v1/builds/%00", "build_id"),
    ("GET", "/v1/models?cursor=%00", "cursor"),
    ("GET", "/v1/models/{private}/versions?cursor=a%00", "cursor"),
]


@pytest.mark.parametrize(
    ("method", "path", "field"), NUL_PATHS, ids=[f"{m} {p}" for m, p, _ in NUL_PATHS]
)
async def test_a_nul_character_in_a_path_or_query_is_invalid_input(
    gateway: httpx.AsyncClient,
    db: AsyncEngine,
    world: World,
    runner: Runner,
    method: str,
    path: str,
    field: str,
) -> None:
    before = await snapshot(gateway, db, world)
    request: dict[str, Any] = {"headers": world.headers}
    if method == "PATCH":
        request["json"] = {"description": "x"}
    if method == "POST":
        request = {
            "content": runner.tarball(),
            "headers": world.headers | {"content-type": "application/gzip"},
        }

    response = await gateway.request(method, world.fill(path), **request)

    problem = assert_problem(response, 422, INVALID)
    assert [f["field"] for f in problem["invalid_fields"]] == [field]
    assert await snapshot(gateway, db, world) == before
