"""Garbage requests to the deployment endpoints: each gets a precise problem+json and changes
nothing."""

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


@dataclass(frozen=True)
class World:
    """A user with a private model, a ready version of it and a deployment of that version."""

    token: str
    owner: str
    model: str
    version: str
    deployment: str

    def fill(self, path: str) -> str:
        return path.format(owner=self.owner, deployment=self.deployment)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def create_body(self) -> dict[str, Any]:
        return {
            "name": f"g-{uuid.uuid4().hex[:8]}",
            "model": self.model,
            "version": self.version,
            "hardware": "cpu",
            "min_instances": 0,
            "max_instances": 2,
        }


async def make_world(gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner) -> World:
    token, me = await new_user()
    owner = me.account.username
    headers = {"Authorization": f"Bearer {token}"}
    name = f"garbage-{uuid.uuid4().hex[:8]}"
    body = {"owner": owner, "name": name, "visibility": "private", "hardware": "cpu"}
    response = await gateway.post("/v1/models", json=body, headers=headers)
    assert response.status_code == 201, response.text
    build = await runner.release(token, f"{owner}/{name}")
    world = World(token, owner, f"{owner}/{name}", build["version"], "")
    created = await gateway.post("/v1/deployments", json=world.create_body(), headers=headers)
    assert created.status_code == 200, created.text
    return World(token, owner, world.model, world.version, f"{owner}/{created.json()['name']}")


@pytest.fixture(scope="module")
async def world(gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner) -> World:
    return await make_world(gateway, new_user, runner)


async def snapshot(gateway: httpx.AsyncClient, db: AsyncEngine, world: World) -> dict[str, Any]:
    """What a garbage request must not change, seen through the API and in the tables."""
    path = f"/v1/deployments/{world.deployment}"
    deployment = (await gateway.get(path, headers=world.headers)).json()
    releases = (await gateway.get(f"{path}/releases", headers=world.headers)).json()
    listed = (await gateway.get("/v1/deployments", headers=world.headers)).json()
    async with db.connect() as conn:
        rows = {
            table: await conn.scalar(text(f"SELECT count(*) FROM registry.{table}"))  # noqa: S608 - our names
            for table in ("deployments", "deployment_releases", "models", "versions")
        }
    return {"deployment": deployment, "releases": releases, "list": listed, "rows": rows}


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
    "create-deployment": ("POST", "/v1/deployments", lambda w: w.create_body()),
    "patch-deployment": (
        "PATCH",
        "/v1/deployments/{deployment}",
        lambda w: {"max_instances": 3, "hardware": "gpu-t4"},
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
    "nul-in-hardware": Garbage(
        lambda b: {"json": b | {"hardware": "cpu\x00"}}, 422, INVALID, "hardware"
    ),
    "min-as-string": Garbage(
        lambda b: {"json": b | {"min_instances": "1"}}, 422, INVALID, "min_instances"
    ),
    "min-as-bool": Garbage(
        lambda b: {"json": b | {"min_instances": True}}, 422, INVALID, "min_instances"
    ),
    "max-as-float": Garbage(
        lambda b: {"json": b | {"max_instances": 2.5}}, 422, INVALID, "max_instances"
    ),
    "max-as-list": Garbage(
        lambda b: {"json": b | {"max_instances": [2]}}, 422, INVALID, "max_instances"
    ),
    "hardware-null": Garbage(lambda b: {"json": b | {"hardware": None}}, 422, INVALID, "hardware"),
    "version-too-long": Garbage(
        lambda b: {"json": b | {"version": "f" * 65}}, 422, INVALID, "version"
    ),
    "text-plain": Garbage(
        lambda b: {"content": json.dumps(b).encode(), "headers": {"content-type": "text/plain"}},
        415,
        UNSUPPORTED,
    ),
    "form": Garbage(
        lambda b: {
            "content": "&".join(f"{k}={v}" for k, v in b.items()).encode(),
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
        assert [f["field"] for f in problem["invalid_fields"]] == [garbage.field]
        assert f"- {garbage.field}: " in problem["detail"]
    assert await snapshot(gateway, db, world) == before


CREATE_GARBAGE: list[tuple[dict[str, Any], list[str]]] = [
    *(({field: None}, [field]) for field in ("name", "model", "version", "min_instances")),
    ({"name": "Not A Name"}, ["name"]),
    ({"name": ""}, ["name"]),
    ({"name": "x" * 101}, ["name"]),
    ({"model": 42}, ["model"]),
    ({"owner": ["me"]}, ["owner"]),
]
MISSING = ["name", "model", "version", "hardware", "min_instances", "max_instances"]


@pytest.mark.parametrize(("changes", "fields"), CREATE_GARBAGE)
async def test_create_field_garbage(
    gateway: httpx.AsyncClient,
    db: AsyncEngine,
    world: World,
    changes: dict[str, Any],
    fields: list[str],
) -> None:
    before = await snapshot(gateway, db, world)

    response = await gateway.post(
        "/v1/deployments", json=world.create_body() | changes, headers=world.headers
    )

    problem = assert_problem(response, 422, INVALID)
    assert [f["field"] for f in problem["invalid_fields"]] == fields
    assert await snapshot(gateway, db, world) == before


@pytest.mark.parametrize("missing", MISSING)
async def test_every_create_field_is_required(
    gateway: httpx.AsyncClient, db: AsyncEngine, world: World, missing: str
) -> None:
    body = {k: v for k, v in world.create_body().items() if k != missing}
    before = await snapshot(gateway, db, world)

    response = await gateway.post("/v1/deployments", json=body, headers=world.headers)

    problem = assert_problem(response, 422, INVALID)
    assert [f["field"] for f in problem["invalid_fields"]] == [missing]
    assert await snapshot(gateway, db, world) == before


PATCH_GARBAGE: list[tuple[dict[str, Any], list[str]]] = [
    *(({field: None}, [field]) for field in ("version", "hardware", "min_instances")),
    ({"max_instances": None, "min_instances": "1"}, ["min_instances", "max_instances"]),
    ({"model": "someone/else"}, ["model"]),
    ({"name": "renamed"}, ["name"]),
    ({"owner": "someone"}, ["owner"]),
    ({}, ["body"]),
]


@pytest.mark.parametrize(("body", "fields"), PATCH_GARBAGE)
async def test_patch_field_garbage(
    gateway: httpx.AsyncClient,
    db: AsyncEngine,
    world: World,
    body: dict[str, Any],
    fields: list[str],
) -> None:
    before = await snapshot(gateway, db, world)

    response = await gateway.patch(
        f"/v1/deployments/{world.deployment}", json=body, headers=world.headers
    )

    problem = assert_problem(response, 422, INVALID)
    assert [f["field"] for f in problem["invalid_fields"]] == fields
    assert await snapshot(gateway, db, world) == before


@pytest.mark.parametrize("endpoint", list(BODY_ENDPOINTS))
async def test_the_valid_bodies_do_work(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner, endpoint: str
) -> None:
    """The control for the tables above: unspoiled, the same bodies succeed."""
    fresh = await make_world(gateway, new_user, runner)
    method, path, make_body = BODY_ENDPOINTS[endpoint]

    response = await gateway.request(
        method, fresh.fill(path), json=make_body(fresh), headers=fresh.headers
    )

    assert response.status_code == 200, response.text


WRONG_METHODS = [
    ("PUT", "/v1/deployments"),
    ("DELETE", "/v1/deployments"),
    ("PATCH", "/v1/deployments"),
    ("POST", "/v1/deployments/{deployment}"),
    ("PUT", "/v1/deployments/{deployment}"),
    ("POST", "/v1/deployments/{deployment}/releases"),
    ("DELETE", "/v1/deployments/{deployment}/releases"),
    ("GET", "/v1/deployments/{deployment}/predictions"),
    ("DELETE", "/v1/deployments/{deployment}/predictions"),
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
    assert method not in response.headers["allow"]
    assert await snapshot(gateway, db, world) == before


UNKNOWN_ROUTES = [
    ("GET", "/v1/deployments/{owner}"),
    ("GET", "/v1/deployments/{deployment}/extra"),
    ("GET", "/v1/deployments/{deployment}/releases/1"),
    ("DELETE", "/v1/deployments/{deployment}/releases/1"),
]


@pytest.mark.parametrize(
    ("method", "path"), UNKNOWN_ROUTES, ids=[f"{m} {p}" for m, p in UNKNOWN_ROUTES]
)
async def test_unknown_route(
    gateway: httpx.AsyncClient, db: AsyncEngine, world: World, method: str, path: str
) -> None:
    before = await snapshot(gateway, db, world)

    response = await gateway.request(method, world.fill(path), headers=world.headers)

    assert_problem(response, 404, "Not found")
    assert await snapshot(gateway, db, world) == before


NUL_PATHS = [
    ("GET", "/v1/deployments/%00/x", "owner"),
    ("GET", "/v1/deployments/{owner}/a%00b", "name"),
    ("PATCH", "/v1/deployments/{owner}/a%00b", "name"),
    ("DELETE", "/v1/deployments/%00/x", "owner"),
    ("GET", "/v1/deployments/{owner}/a%00/releases", "name"),
    ("GET", "/v1/deployments?cursor=%00", "cursor"),
    ("GET", "/v1/deployments?cursor=junk", "cursor"),
]


@pytest.mark.parametrize(
    ("method", "path", "field"), NUL_PATHS, ids=[f"{m} {p}" for m, p, _ in NUL_PATHS]
)
async def test_a_bad_path_or_query_value_is_invalid_input(
    gateway: httpx.AsyncClient, db: AsyncEngine, world: World, method: str, path: str, field: str
) -> None:
    before = await snapshot(gateway, db, world)
    request: dict[str, Any] = {"headers": world.headers}
    if method == "PATCH":
        request["json"] = {"max_instances": 3}

    response = await gateway.request(method, world.fill(path), **request)

    problem = assert_problem(response, 422, INVALID)
    assert [f["field"] for f in problem["invalid_fields"]] == [field]
    assert await snapshot(gateway, db, world) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/deployments"),
        ("POST", "/v1/deployments"),
        ("GET", "/v1/deployments/{deployment}"),
        ("PATCH", "/v1/deployments/{deployment}"),
        ("DELETE", "/v1/deployments/{deployment}"),
        ("GET", "/v1/deployments/{deployment}/releases"),
        ("POST", "/v1/deployments/{deployment}/predictions"),
    ],
)
async def test_every_endpoint_needs_a_token(
    gateway: httpx.AsyncClient, db: AsyncEngine, world: World, method: str, path: str
) -> None:
    before = await snapshot(gateway, db, world)
    body = world.create_body() if method != "GET" else None

    response = await gateway.request(method, world.fill(path), json=body)

    assert_problem(response, 401, "Unauthenticated")
    assert await snapshot(gateway, db, world) == before
