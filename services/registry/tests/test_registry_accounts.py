"""Users through the registry's request-reply calls: creation, uniqueness, validation, bootstrap."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cogplane.common.bus import Bus
from cogplane.common.contracts import accounts as c
from cogplane.common.errors import CogplaneError, Conflict, Forbidden, InvalidInput
from cogplane.registry.bootstrap import bootstrap
from cogplane.registry.config import RegistrySettings

Actor = tuple[str, c.Caller]
MakeActor = Callable[[], Awaitable[Actor]]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def rows_named(db: AsyncEngine, username: str) -> dict[str, int]:
    """How many rows of each registry table concern ``username``."""
    async with db.connect() as conn:
        accounts = await conn.scalar(
            text("SELECT count(*) FROM registry.accounts WHERE username = :u"), {"u": username}
        )
        memberships = await conn.scalar(
            text(
                "SELECT count(*) FROM registry.memberships m JOIN registry.accounts a"
                " ON a.id IN (m.organization_id, m.user_id) WHERE a.username = :u"
            ),
            {"u": username},
        )
        tokens = await conn.scalar(
            text(
                "SELECT count(*) FROM registry.api_tokens t JOIN registry.accounts a"
                " ON a.id = t.account_id WHERE a.username = :u"
            ),
            {"u": username},
        )
    return {"accounts": accounts or 0, "memberships": memberships or 0, "tokens": tokens or 0}


async def test_an_admin_creates_users(bus: Bus, root: Actor) -> None:
    username = unique("user")
    request = c.CreateUser(
        account_id=root[1].account.id,
        username=username,
        name="Ada Lovelace",
        github_url="https://github.com/ada",
    )

    account = await bus.request(c.CREATE_USER, request)

    assert account.type == "user"
    assert account.username == username
    assert account.name == "Ada Lovelace"
    assert account.github_url == "https://github.com/ada"
    assert len(account.id) == 32


async def test_users_created_as_admin_can_create_users(bus: Bus, root: Actor) -> None:
    request = c.CreateUser(
        account_id=root[1].account.id, username=unique("boss"), name="B", is_admin=True
    )
    boss = await bus.request(c.CREATE_USER, request)

    created = await bus.request(
        c.CREATE_USER, c.CreateUser(account_id=boss.id, username=unique("user"), name="U")
    )

    assert created.type == "user"


async def test_a_plain_user_cannot_create_users(
    bus: Bus, db: AsyncEngine, new_user: MakeActor
) -> None:
    _, me = await new_user()
    username = unique("user")

    with pytest.raises(Forbidden) as caught:
        await bus.request(
            c.CREATE_USER,
            c.CreateUser(account_id=me.account.id, username=username, name="X", is_admin=True),
        )

    assert caught.value.status == 403
    assert await rows_named(db, username) == {"accounts": 0, "memberships": 0, "tokens": 0}


async def test_usernames_are_unique_across_users(bus: Bus, db: AsyncEngine, root: Actor) -> None:
    username = unique("user")
    first = c.CreateUser(account_id=root[1].account.id, username=username, name="First")
    await bus.request(c.CREATE_USER, first)

    with pytest.raises(Conflict) as caught:
        await bus.request(c.CREATE_USER, first.model_copy(update={"name": "Second"}))

    assert caught.value.status == 409
    assert username in caught.value.detail
    assert await rows_named(db, username) == {"accounts": 1, "memberships": 0, "tokens": 0}


async def test_a_user_cannot_take_an_organizations_name(
    bus: Bus, db: AsyncEngine, new_user: MakeActor, root: Actor
) -> None:
    _, owner = await new_user()
    name = unique("org")
    await bus.request(
        c.CREATE_ORGANIZATION,
        c.CreateOrganization(account_id=owner.account.id, username=name, name="Org"),
    )

    with pytest.raises(Conflict):
        await bus.request(
            c.CREATE_USER, c.CreateUser(account_id=root[1].account.id, username=name, name="U")
        )

    assert await rows_named(db, name) == {"accounts": 1, "memberships": 1, "tokens": 0}


async def test_an_organization_cannot_take_a_users_name(
    bus: Bus, db: AsyncEngine, new_user: MakeActor
) -> None:
    _, owner = await new_user()
    _, other = await new_user()
    before_owner = await rows_named(db, owner.account.username)

    with pytest.raises(Conflict):
        await bus.request(
            c.CREATE_ORGANIZATION,
            c.CreateOrganization(
                account_id=owner.account.id, username=other.account.username, name="Org"
            ),
        )

    assert await rows_named(db, other.account.username) == {
        "accounts": 1,
        "memberships": 0,
        "tokens": 1,
    }
    assert await rows_named(db, owner.account.username) == before_owner
    mine = await bus.request(c.LIST_MEMBERSHIPS, c.CallerRef(account_id=owner.account.id))
    assert mine.results == []


INVALID_USERS: list[tuple[dict[str, Any], str]] = [
    ({"username": "Upper"}, "username"),
    ({"username": "a" * 40}, "username"),
    ({"username": "-leading-dash"}, "username"),
    ({"username": "trailing-dash-"}, "username"),
    ({"username": "has space"}, "username"),
    ({"username": "under_score"}, "username"),
    ({"username": ""}, "username"),
    ({"name": ""}, "name"),
    ({"name": "n" * 201}, "name"),
]


@pytest.mark.parametrize(
    ("change", "field"),
    INVALID_USERS,
    ids=[f"{field}-{i}" for i, (_, field) in enumerate(INVALID_USERS)],
)
async def test_invalid_users_are_refused_naming_the_field(
    bus: Bus, db: AsyncEngine, root: Actor, change: dict[str, Any], field: str
) -> None:
    fields = {"account_id": root[1].account.id, "username": unique("user"), "name": "N"} | change
    request = c.CreateUser.model_construct(**fields)

    with pytest.raises(InvalidInput) as caught:
        await bus.request(c.CREATE_USER, request)

    problem = caught.value.to_problem()
    assert problem["status"] == 422
    assert [f["field"] for f in problem["invalid_fields"]] == [field]
    assert problem["detail"].startswith(f"- {field}: ")
    assert (await rows_named(db, str(fields["username"])))["accounts"] == 0


async def test_the_longest_username_is_accepted(bus: Bus, root: Actor) -> None:
    username = ("u" + uuid.uuid4().hex * 2)[:39]
    request = c.CreateUser(account_id=root[1].account.id, username=username, name="Long")

    assert (await bus.request(c.CREATE_USER, request)).username == username


async def test_an_overlong_github_url_is_invalid_input(bus: Bus, root: Actor) -> None:
    # model_construct skips the client-side check: the registry must refuse it by itself.
    request = c.CreateUser.model_construct(
        account_id=root[1].account.id,
        username=unique("user"),
        name="N",
        github_url="https://github.com/" + "x" * 500,
    )

    with pytest.raises(CogplaneError) as caught:
        await bus.request(c.CREATE_USER, request)

    assert caught.value.status == 422
    assert [f["field"] for f in caught.value.extra["invalid_fields"]] == ["github_url"]


async def test_a_request_that_is_not_json_is_invalid_input(bus: Bus) -> None:
    raw = await bus.nc.request(c.CREATE_USER.subject, b"{not json", timeout=5)

    assert b'"ok":false' in raw.data
    assert b'"status":422' in raw.data


async def test_bootstrap_is_idempotent(
    bus: Bus, db: AsyncEngine, registry_settings: RegistrySettings
) -> None:
    username, orgname = unique("admin"), unique("org")

    first = await bootstrap(registry_settings, username, orgname)
    second = await bootstrap(registry_settings, username, orgname)

    assert first["account"] == second["account"]
    assert first["organization"] == second["organization"]
    assert first["token"] != second["token"]
    for token in (first["token"], second["token"]):
        caller = await bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=str(token)))
        assert caller.account.username == username
        assert caller.organizations == [orgname]
        assert caller.is_admin is True
    assert await rows_named(db, username) == {"accounts": 1, "memberships": 1, "tokens": 2}
    assert await rows_named(db, orgname) == {"accounts": 1, "memberships": 1, "tokens": 0}
    members = await bus.request(
        c.LIST_MEMBERS,
        c.OrganizationRef(account_id=str(first["account"]["id"]), organization=orgname),  # type: ignore[index]
    )
    assert [(m.account.username, m.role) for m in members.results] == [(username, "owner")]
