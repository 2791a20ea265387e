"""Garbage requests to every endpoint: each gets a precise problem+json and changes nothing."""

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
MAX_BODY_BYTES = 4096


@dataclass(frozen=True)
class World:
    """An owner with a token, an organization, and a user who is not in it yet."""

    token: str
    owner: c.Caller
    org: str
    outsider: str

    def fill(self, path: str) -> str:
        return path.format(token_id=self.owner.token_id, org=self.org, member=self.outsider)


@pytest.fixture(scope="module")
async def world(new_admin: MakeActor, new_user: MakeActor) -> World:
    token, owner = await new_admin()
    _, outsider = await new_user()
    return World(token, owner, owner.organizations[0], outsider.account.username)


async def snapshot(gateway: httpx.AsyncClient, db: AsyncEngine, world: World) -> dict[str, Any]:
    """What a garbage request must not change, seen through the API and in the tables."""
    headers = {"Authorization": f"Bearer {world.token}"}
    tokens = (await gateway.get("/v1/tokens", headers=headers)).json()["results"]
    orgs = (await gateway.get("/v1/organizations", headers=headers)).json()
    members = (await gateway.get(f"/v1/organizations/{world.org}/members", headers=headers)).json()
    async with db.connect() as conn:
        rows = {
            table: await conn.scalar(text(f"SELECT count(*) FROM registry.{table}"))  # noqa: S608 - our names
            for table in ("accounts", "memberships", "api_tokens")
        }
    return {
        "tokens": [(t["id"], t["name"]) for t in tokens],
        "organizations": orgs,
        "members": members,
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
BODY_ENDPOINTS: dict[str, tuple[str, Callable[[World], dict[str, Any]]]] = {
    "create-token": ("/v1/tokens", lambda w: {"name": "garbage"}),
    "create-user": ("/v1/users", lambda w: {"username": f"u-{uuid.uuid4().hex[:8]}", "name": "G"}),
    "create-org": (
        "/v1/organizations",
        lambda w: {"username": f"o-{uuid.uuid4().hex[:8]}", "name": "G"},
    ),
    "add-member": ("/v1/organizations/{org}/members", lambda w: {"username": w.outsider}),
}


JSON = {"content-type": "application/json"}


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


INVALID = "Input validation failed"
UNSUPPORTED = "Unsupported media type"
TOO_LARGE = "Payload too large"
GARBAGE = {
    "malformed-json": Garbage(
        lambda b: {"content": json.dumps(b).encode()[:-1], "headers": JSON}, 422, INVALID, "body"
    ),
    "not-an-object": Garbage(
        lambda b: {"content": json.dumps([b]).encode(), "headers": JSON}, 422, INVALID, "body"
    ),
    "unknown-field": Garbage(lambda b: {"json": b | {"bogus": 1}}, 422, INVALID, "bogus"),
    "text-plain": Garbage(
        lambda b: {"content": json.dumps(b).encode(), "headers": {"content-type": "text/plain"}},
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
    path, make_body = BODY_ENDPOINTS[endpoint]
    garbage = GARBAGE[kind]
    request = garbage.spoil(make_body(world))
    request["headers"] = request.get("headers", {}) | {"Authorization": f"Bearer {world.token}"}
    before = await snapshot(gateway, db, world)

    response = await gateway.post(world.fill(path), **request)

    problem = assert_problem(response, garbage.status, garbage.title)
    if garbage.field is not None:
        assert garbage.field in [f["field"] for f in problem["invalid_fields"]]
        assert f"- {garbage.field}: " in problem["detail"]
    assert await snapshot(gateway, db, world) == before


@pytest.mark.parametrize("endpoint", list(BODY_ENDPOINTS))
async def test_the_valid_bodies_do_work(
    gateway: httpx.AsyncClient, new_admin: MakeActor, new_user: MakeActor, endpoint: str
) -> None:
    """The control for the table above: unspoiled, the same bodies succeed."""
    token, owner = await new_admin()
    _, outsider = await new_user()
    fresh = World(token, owner, owner.organizations[0], outsider.account.username)
    path, make_body = BODY_ENDPOINTS[endpoint]

    response = await gateway.post(
        fresh.fill(path), json=make_body(fresh), headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 201, response.text


WRONG_METHODS = [
    ("PUT", "/v1/account"),
    ("POST", "/v1/account"),
    ("DELETE", "/v1/account"),
    ("PATCH", "/v1/tokens"),
    ("DELETE", "/v1/tokens"),
    ("GET", "/v1/tokens/{token_id}"),
    ("PUT", "/v1/tokens/{token_id}"),
    ("POST", "/v1/tokens/{token_id}"),
    ("GET", "/v1/users"),
    ("DELETE", "/v1/users"),
    ("PUT", "/v1/organizations"),
    ("DELETE", "/v1/organizations"),
    ("PUT", "/v1/organizations/{org}/members"),
    ("DELETE", "/v1/organizations/{org}/members"),
    ("GET", "/v1/organizations/{org}/members/{member}"),
    ("POST", "/v1/organizations/{org}/members/{member}"),
    ("POST", "/livez"),
    ("DELETE", "/readyz"),
]


@pytest.mark.parametrize(
    ("method", "path"), WRONG_METHODS, ids=[f"{m} {p}" for m, p in WRONG_METHODS]
)
async def test_wrong_method(
    gateway: httpx.AsyncClient, db: AsyncEngine, world: World, method: str, path: str
) -> None:
    before = await snapshot(gateway, db, world)

    response = await gateway.request(
        method, world.fill(path), headers={"Authorization": f"Bearer {world.token}"}
    )

    assert_problem(response, 405, "Method not allowed")
    assert response.headers["allow"]
    assert method not in response.headers["allow"]
    assert await snapshot(gateway, db, world) == before


UNKNOWN_ROUTES = [
    ("GET", "/v1/nope"),
    ("GET", "/v2/account"),
    ("GET", "/v1/account/extra"),
    ("GET", "/v1/tokens/{token_id}/extra"),
    ("DELETE", "/v1/tokens/{token_id}/extra"),
    ("POST", "/v1/organizations/{org}/members/{member}/promote"),
    ("GET", "/v1/organizations/{org}"),
    ("DELETE", "/v1/organizations/{org}"),
    ("POST", "/v1/trainings"),
    ("GET", "/v1"),  # "/" is the web app's home now
    ("GET", "/no-such-page"),
]


@pytest.mark.parametrize(
    ("method", "path"), UNKNOWN_ROUTES, ids=[f"{m} {p}" for m, p in UNKNOWN_ROUTES]
)
async def test_unknown_route(
    gateway: httpx.AsyncClient, db: AsyncEngine, world: World, method: str, path: str
) -> None:
    before = await snapshot(gateway, db, world)
    body = {"username": world.outsider} if method == "POST" else None

    response = await gateway.request(
        method, world.fill(path), json=body, headers={"Authorization": f"Bearer {world.token}"}
    )

    problem = assert_problem(response, 404, "Not found")
    assert problem == {
        "title": "Not found",
        "detail": "The requested resource does not exist",
        "status": 404,
    }
    assert await snapshot(gateway, db, world) == before


NUL_BODIES = [
    ("/v1/tokens", {"name": "a\x00"}, "name"),
    ("/v1/organizations", {"username": "nul-org", "name": "a\x00"}, "name"),
    ("/v1/users", {"username": "nul-user", "name": "a\x00"}, "name"),
    ("/v1/users", {"username": "nul-user", "name": "a", "github_url": "a\x00"}, "github_url"),
]


@pytest.mark.parametrize(
    ("path", "body", "field"), NUL_BODIES, ids=[f"{p} {f}" for p, _, f in NUL_BODIES]
)
async def test_a_nul_character_in_a_body_is_invalid_input(
    gateway: httpx.AsyncClient,
    db: AsyncEngine,
    world: World,
    path: str,
    body: dict[str, str],
    field: str,
) -> None:
    before = await snapshot(gateway, db, world)

    response = await gateway.post(
        path, json=body, headers={"Authorization": f"Bearer {world.token}"}
    )

    assert await snapshot(gateway, db, world) == before
    problem = assert_problem(response, 422, INVALID)
    assert [f["field"] for f in problem["invalid_fields"]] == [field]
