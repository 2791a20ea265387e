"""Organizations, members and users through the gateway."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from cogplane.common.contracts import accounts as c

Actor = tuple[str, c.Caller]
MakeActor = Callable[[], Awaitable[Actor]]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    return problem


async def create_org(gateway: httpx.AsyncClient, token: str) -> str:
    name = unique("org")
    response = await gateway.post(
        "/v1/organizations", json={"username": name, "name": "Acme"}, headers=auth(token)
    )
    assert response.status_code == 201, response.text
    return name


async def member_roles(gateway: httpx.AsyncClient, token: str, org: str) -> list[tuple[str, str]]:
    response = await gateway.get(f"/v1/organizations/{org}/members", headers=auth(token))
    assert response.status_code == 200, response.text
    return [(m["account"]["username"], m["role"]) for m in response.json()["results"]]


async def add_member(
    gateway: httpx.AsyncClient, token: str, org: str, username: str
) -> httpx.Response:
    return await gateway.post(
        f"/v1/organizations/{org}/members", json={"username": username}, headers=auth(token)
    )


async def test_create_and_list_organizations(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    name = unique("org")
    body = {"username": name, "name": "Acme Inc", "github_url": "https://github.com/acme"}

    response = await gateway.post("/v1/organizations", json=body, headers=auth(token))

    assert response.status_code == 201, response.text
    assert response.json() == {"type": "organization", **body}
    listing = await gateway.get("/v1/organizations", headers=auth(token))
    assert listing.status_code == 200
    assert listing.json() == {
        "next": None,
        "previous": None,
        "results": [{"organization": {"type": "organization", **body}, "role": "owner"}],
    }
    assert await member_roles(gateway, token, name) == [(me.account.username, "owner")]


async def test_an_organization_name_is_taken_once(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    other_token, _ = await new_user()
    org = await create_org(gateway, token)

    for taken in (org, me.account.username):
        response = await gateway.post(
            "/v1/organizations",
            json={"username": taken, "name": "Again"},
            headers=auth(other_token),
        )
        assert assert_problem(response, 409)["title"] == "Conflict"

    listing = await gateway.get("/v1/organizations", headers=auth(other_token))
    assert listing.json()["results"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "Acme", "name": "A"}, "username"),
        ({"username": "a" * 40, "name": "A"}, "username"),
        ({"username": "acme"}, "name"),
        ({"username": "acme", "name": "A", "github_url": "g" * 501}, "github_url"),
    ],
    ids=["uppercase", "too-long", "missing-name", "long-github-url"],
)
async def test_an_invalid_organization(
    gateway: httpx.AsyncClient, new_user: MakeActor, body: dict[str, str], field: str
) -> None:
    token, _ = await new_user()

    response = await gateway.post("/v1/organizations", json=body, headers=auth(token))

    problem = assert_problem(response, 422)
    assert problem["title"] == "Input validation failed"
    assert [f["field"] for f in problem["invalid_fields"]] == [field]
    assert (await gateway.get("/v1/organizations", headers=auth(token))).json()["results"] == []


async def test_owners_add_and_remove_members(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    owner_token, owner = await new_user()
    member_token, member = await new_user()
    org = await create_org(gateway, owner_token)

    added = await add_member(gateway, owner_token, org, member.account.username)

    assert added.status_code == 201, added.text
    assert added.json() == {
        "account": {
            "type": "user",
            "username": member.account.username,
            "name": "U",
            "github_url": None,
        },
        "role": "member",
    }
    expected = [(owner.account.username, "owner"), (member.account.username, "member")]
    assert await member_roles(gateway, owner_token, org) == expected
    assert await member_roles(gateway, member_token, org) == expected
    theirs = (await gateway.get("/v1/organizations", headers=auth(member_token))).json()
    assert [(m["organization"]["username"], m["role"]) for m in theirs["results"]] == [
        (org, "member")
    ]

    removed = await gateway.delete(
        f"/v1/organizations/{org}/members/{member.account.username}", headers=auth(owner_token)
    )

    assert removed.status_code == 204
    assert removed.content == b""
    assert await member_roles(gateway, owner_token, org) == [(owner.account.username, "owner")]
    hidden = await gateway.get(f"/v1/organizations/{org}/members", headers=auth(member_token))
    assert_problem(hidden, 404)


async def test_member_management_errors(gateway: httpx.AsyncClient, new_user: MakeActor) -> None:
    owner_token, owner = await new_user()
    member_token, member = await new_user()
    _, outsider = await new_user()
    org = await create_org(gateway, owner_token)
    await add_member(gateway, owner_token, org, member.account.username)
    before = await member_roles(gateway, owner_token, org)

    by_member = await add_member(gateway, member_token, org, outsider.account.username)
    twice = await add_member(gateway, owner_token, org, member.account.username)
    ghost = await add_member(gateway, owner_token, org, unique("ghost"))
    invalid = await add_member(gateway, owner_token, org, "Not A Name")
    member_removes_owner = await gateway.delete(
        f"/v1/organizations/{org}/members/{owner.account.username}", headers=auth(member_token)
    )
    last_owner = await gateway.delete(
        f"/v1/organizations/{org}/members/{owner.account.username}", headers=auth(owner_token)
    )
    not_a_member = await gateway.delete(
        f"/v1/organizations/{org}/members/{outsider.account.username}", headers=auth(owner_token)
    )

    assert assert_problem(by_member, 403)["title"] == "Forbidden"
    assert assert_problem(twice, 409)["title"] == "Conflict"
    assert assert_problem(ghost, 404)["title"] == "Not found"
    assert [f["field"] for f in assert_problem(invalid, 422)["invalid_fields"]] == ["username"]
    assert_problem(member_removes_owner, 403)
    assert assert_problem(last_owner, 409)["detail"] == (
        "An organization must keep at least one owner"
    )
    assert_problem(not_a_member, 404)
    assert await member_roles(gateway, owner_token, org) == before


async def test_outsiders_see_not_found_not_forbidden(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    owner_token, owner = await new_user()
    outsider_token, outsider = await new_user()
    org = await create_org(gateway, owner_token)
    missing = unique("org")

    real = await gateway.get(f"/v1/organizations/{org}/members", headers=auth(outsider_token))
    absent = await gateway.get(f"/v1/organizations/{missing}/members", headers=auth(outsider_token))
    add = await add_member(gateway, outsider_token, org, outsider.account.username)
    remove = await gateway.delete(
        f"/v1/organizations/{org}/members/{owner.account.username}", headers=auth(outsider_token)
    )

    assert assert_problem(real, 404)["detail"] == f"Organization {org!r} not found"
    assert assert_problem(absent, 404)["detail"] == f"Organization {missing!r} not found"
    assert assert_problem(add, 404)["detail"] == f"Organization {org!r} not found"
    assert assert_problem(remove, 404)["detail"] == f"Organization {org!r} not found"
    assert await member_roles(gateway, owner_token, org) == [(owner.account.username, "owner")]


async def test_a_member_can_leave(gateway: httpx.AsyncClient, new_user: MakeActor) -> None:
    owner_token, owner = await new_user()
    member_token, member = await new_user()
    org = await create_org(gateway, owner_token)
    await add_member(gateway, owner_token, org, member.account.username)

    response = await gateway.delete(
        f"/v1/organizations/{org}/members/{member.account.username}", headers=auth(member_token)
    )

    assert response.status_code == 204
    assert await member_roles(gateway, owner_token, org) == [(owner.account.username, "owner")]
    listing = await gateway.get("/v1/organizations", headers=auth(member_token))
    assert listing.json()["results"] == []


async def test_an_admin_creates_users(gateway: httpx.AsyncClient, new_admin: MakeActor) -> None:
    admin_token, _ = await new_admin()
    username = unique("user")
    body = {"username": username, "name": "Grace", "github_url": "https://github.com/grace"}

    response = await gateway.post("/v1/users", json=body, headers=auth(admin_token))

    assert response.status_code == 201, response.text
    assert response.json() == {"type": "user", **body}
    again = await gateway.post("/v1/users", json=body, headers=auth(admin_token))
    assert_problem(again, 409)
    org = await create_org(gateway, admin_token)
    added = await add_member(gateway, admin_token, org, username)
    assert added.status_code == 201, added.text


async def test_only_admins_create_users(gateway: httpx.AsyncClient, new_user: MakeActor) -> None:
    token, _ = await new_user()
    username = unique("user")

    response = await gateway.post(
        "/v1/users", json={"username": username, "name": "X", "is_admin": True}, headers=auth(token)
    )

    assert assert_problem(response, 403)["detail"] == "Only administrators can create users"
    org = await create_org(gateway, token)
    assert_problem(await add_member(gateway, token, org, username), 404)


async def test_an_organization_name_with_a_nul_character_is_invalid_input(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, _ = await new_user()

    response = await gateway.get("/v1/organizations/%00/members", headers=auth(token))

    problem = assert_problem(response, 422)
    assert [f["field"] for f in problem["invalid_fields"]] == ["organization"]
