"""Authentication at the gateway: Replicate's schemes, its exact 401 bodies, and /v1/account."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cogplane.common.bus import Bus
from cogplane.common.contracts import accounts as c

Actor = tuple[str, c.Caller]
MakeActor = Callable[[], Awaitable[Actor]]

NO_TOKEN = {
    "title": "Unauthenticated",
    "detail": "You did not pass an authentication token",
    "status": 401,
}
BAD_TOKEN = {
    "title": "Unauthenticated",
    "detail": "You did not pass a valid authentication token",
    "status": 401,
}


def assert_unauthenticated(response: httpx.Response, problem: dict[str, Any]) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == problem


async def test_account_with_a_bearer_token(
    gateway: httpx.AsyncClient, new_admin: MakeActor
) -> None:
    token, me = await new_admin()

    response = await gateway.get("/v1/account", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "type": "user",
        "username": me.account.username,
        "name": "Development user",
        "github_url": None,
    }


@pytest.mark.parametrize("scheme", ["Token", "token", "bearer", "BEARER"])
async def test_account_with_other_spellings_of_the_schemes(
    gateway: httpx.AsyncClient, new_user: MakeActor, scheme: str
) -> None:
    token, me = await new_user()

    response = await gateway.get("/v1/account", headers={"Authorization": f"{scheme} {token}"})

    assert response.status_code == 200
    assert response.json() == {
        "type": "user",
        "username": me.account.username,
        "name": "U",
        "github_url": None,
    }


async def test_no_authorization_header(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/v1/account")

    assert_unauthenticated(response, NO_TOKEN)
    assert response.content == (
        b'{"title":"Unauthenticated","detail":"You did not pass an authentication token",'
        b'"status":401}'
    )


@pytest.mark.parametrize("header", ["", "   ", "Bearer", "Bearer ", "Token    ", "bearer\t"])
async def test_an_empty_token_is_no_token(gateway: httpx.AsyncClient, header: str) -> None:
    response = await gateway.get("/v1/account", headers={"Authorization": header})

    assert_unauthenticated(response, NO_TOKEN)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer r8_" + "x" * 37,
        "Bearer not-a-token",
        "Token r8_",
        "Bearer " + "r8_" + "a" * 198,
        "Bearer " + "a" * 10_000,
        "Bearer r8_abc\u00e9",
    ],
    ids=["unknown", "garbage", "prefix-only", "over-long", "huge", "non-ascii"],
)
async def test_an_invalid_token(gateway: httpx.AsyncClient, header: str) -> None:
    headers = {b"Authorization": header.encode("latin-1")}  # httpx sends str headers as ASCII

    response = await gateway.get("/v1/account", headers=headers)

    assert_unauthenticated(response, BAD_TOKEN)


@pytest.mark.parametrize(
    "template", ["Basic {}", "{}", "Bearer {} extra", "Bearer\t{}", "Bearer:{}"]
)
async def test_a_valid_token_in_a_malformed_header(
    gateway: httpx.AsyncClient, new_user: MakeActor, template: str
) -> None:
    token, _ = await new_user()

    response = await gateway.get("/v1/account", headers={"Authorization": template.format(token)})

    assert_unauthenticated(response, BAD_TOKEN)


async def test_a_revoked_token(gateway: httpx.AsyncClient, bus: Bus, new_user: MakeActor) -> None:
    token, me = await new_user()
    await bus.request(c.REVOKE_TOKEN, c.RevokeToken(account_id=me.account.id, token_id=me.token_id))

    response = await gateway.get("/v1/account", headers={"Authorization": f"Bearer {token}"})

    assert_unauthenticated(response, BAD_TOKEN)


ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/account", None),
    ("GET", "/v1/tokens", None),
    ("POST", "/v1/tokens", {"name": "anonymous"}),
    ("DELETE", "/v1/tokens/{token_id}", None),
    ("POST", "/v1/users", {"username": "anonymous-user", "name": "A"}),
    ("GET", "/v1/organizations", None),
    ("POST", "/v1/organizations", {"username": "anonymous-org", "name": "A"}),
    ("GET", "/v1/organizations/{org}/members", None),
    ("POST", "/v1/organizations/{org}/members", {"username": "{member}"}),
    ("DELETE", "/v1/organizations/{org}/members/{member}", None),
]


async def row_counts(db: AsyncEngine) -> dict[str, int]:
    async with db.connect() as conn:
        return {
            table: int(await conn.scalar(text(f"SELECT count(*) FROM registry.{table}")) or 0)  # noqa: S608 - our names
            for table in ("accounts", "memberships", "api_tokens")
        }


@pytest.mark.parametrize(
    ("method", "path", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS]
)
@pytest.mark.parametrize("header", [None, "Bearer r8_" + "x" * 37], ids=["none", "bad"])
async def test_every_endpoint_needs_a_valid_token(
    gateway: httpx.AsyncClient,
    db: AsyncEngine,
    new_admin: MakeActor,
    new_user: MakeActor,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    header: str | None,
) -> None:
    _, owner = await new_admin()
    _, member = await new_user()
    names = {
        "token_id": owner.token_id,
        "org": owner.organizations[0],
        "member": member.account.username,
    }
    if body is not None:
        body = {k: v.format(**names) for k, v in body.items()}
    before = await row_counts(db)

    response = await gateway.request(
        method,
        path.format(**names),
        json=body,
        headers={} if header is None else {"Authorization": header},
    )

    assert_unauthenticated(response, NO_TOKEN if header is None else BAD_TOKEN)
    assert await row_counts(db) == before
