"""The tokens API: create (secret shown once), list (never the secret), revoke."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from cogplane.common.contracts import accounts as c

Actor = tuple[str, c.Caller]
MakeActor = Callable[[], Awaitable[Actor]]

TOKEN_FORMAT = re.compile(r"r8_[A-Za-z0-9]{37}")
BAD_TOKEN = {
    "title": "Unauthenticated",
    "detail": "You did not pass a valid authentication token",
    "status": 401,
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


async def token_ids(gateway: httpx.AsyncClient, token: str) -> list[str]:
    response = await gateway.get("/v1/tokens", headers=auth(token))
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["results"]]


async def test_a_created_token_is_shown_once_and_works(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()

    response = await gateway.post("/v1/tokens", json={"name": "laptop"}, headers=auth(token))

    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "name", "hint", "created_at", "last_used_at", "token"}
    assert TOKEN_FORMAT.fullmatch(created["token"])
    assert created["name"] == "laptop"
    assert created["hint"] == created["token"][:7]
    assert created["last_used_at"] is None
    account = await gateway.get("/v1/account", headers=auth(created["token"]))
    assert account.status_code == 200
    assert account.json()["username"] == me.account.username

    listing = await gateway.get("/v1/tokens", headers=auth(token))
    assert listing.status_code == 200
    assert created["token"] not in listing.text
    page = listing.json()
    assert set(page) == {"next", "previous", "results"}
    assert (page["next"], page["previous"]) == (None, None)
    assert [t["id"] for t in page["results"]] == [created["id"], me.token_id]
    for info in page["results"]:
        assert set(info) == {"id", "name", "hint", "created_at", "last_used_at"}
    assert page["results"][0]["last_used_at"] is not None  # it was just used for /v1/account


async def test_a_token_name_defaults_to_api(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, _ = await new_user()

    response = await gateway.post("/v1/tokens", json={}, headers=auth(token))

    assert response.status_code == 201, response.text
    assert response.json()["name"] == "api"


@pytest.mark.parametrize("name", ["", "n" * 101, 42, None])
async def test_an_invalid_token_name(
    gateway: httpx.AsyncClient, new_user: MakeActor, name: object
) -> None:
    token, me = await new_user()

    response = await gateway.post("/v1/tokens", json={"name": name}, headers=auth(token))

    problem = assert_problem(response, 422)
    assert [f["field"] for f in problem["invalid_fields"]] == ["name"]
    assert await token_ids(gateway, token) == [me.token_id]


async def test_a_revoked_token_stops_working(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    spare = (await gateway.post("/v1/tokens", json={"name": "spare"}, headers=auth(token))).json()

    response = await gateway.delete(f"/v1/tokens/{spare['id']}", headers=auth(token))

    assert response.status_code == 204
    assert response.content == b""
    gone = await gateway.get("/v1/account", headers=auth(spare["token"]))
    assert gone.status_code == 401
    assert gone.json() == BAD_TOKEN
    assert await token_ids(gateway, token) == [me.token_id]


async def test_a_token_can_revoke_itself(gateway: httpx.AsyncClient, new_user: MakeActor) -> None:
    token, me = await new_user()

    response = await gateway.delete(f"/v1/tokens/{me.token_id}", headers=auth(token))

    assert response.status_code == 204
    after = await gateway.get("/v1/tokens", headers=auth(token))
    assert after.status_code == 401
    assert after.json() == BAD_TOKEN


async def test_revoking_another_accounts_token_is_not_found(
    gateway: httpx.AsyncClient, new_user: MakeActor, new_admin: MakeActor
) -> None:
    victim_token, victim = await new_user()
    attacker_token, _ = await new_user()
    admin_token, _ = await new_admin()

    for token in (attacker_token, admin_token):
        response = await gateway.delete(f"/v1/tokens/{victim.token_id}", headers=auth(token))
        assert assert_problem(response, 404) == {
            "title": "Not found",
            "detail": "Token not found",
            "status": 404,
        }

    assert (await gateway.get("/v1/account", headers=auth(victim_token))).status_code == 200
    assert await token_ids(gateway, victim_token) == [victim.token_id]


@pytest.mark.parametrize(
    "token_id",
    [uuid.uuid4().hex, "x" * 3000, "'%20OR%201=1", "%F0%9F%98%80"],
    ids=["random", "long", "sql", "emoji"],
)
async def test_revoking_an_unknown_token_is_not_found(
    gateway: httpx.AsyncClient, new_user: MakeActor, token_id: str
) -> None:
    token, me = await new_user()

    response = await gateway.delete(f"/v1/tokens/{token_id}", headers=auth(token))

    assert_problem(response, 404)
    assert await token_ids(gateway, token) == [me.token_id]


async def test_a_token_id_with_a_nul_character_is_invalid_input(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()

    response = await gateway.delete("/v1/tokens/%00", headers=auth(token))

    problem = assert_problem(response, 422)
    assert [f["field"] for f in problem["invalid_fields"]] == ["token_id"]
    assert await token_ids(gateway, token) == [me.token_id]
