"""API tokens through the registry's request-reply calls: verify, create, list, revoke."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cogplane.common.bus import Bus
from cogplane.common.contracts import accounts as c
from cogplane.common.errors import CogplaneError, NotFound, Unauthenticated

Actor = tuple[str, c.Caller]
MakeActor = Callable[[], Awaitable[Actor]]

INVALID = "You did not pass a valid authentication token"
TOKEN_FORMAT = re.compile(r"r8_[A-Za-z0-9]{37}")


async def verify(bus: Bus, token: str) -> c.Caller:
    return await bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=token))


async def assert_rejected(bus: Bus, token: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await verify(bus, token)
    assert caught.value.to_problem() == {
        "title": "Unauthenticated",
        "detail": INVALID,
        "status": 401,
    }


async def test_verify_returns_the_user_and_their_organizations(
    bus: Bus, new_admin: MakeActor
) -> None:
    token, _ = await new_admin()

    caller = await verify(bus, token)

    assert caller.account.type == "user"
    assert caller.account.username.startswith("admin-")
    assert caller.is_admin is True
    assert len(caller.organizations) == 1
    assert caller.organizations[0].startswith("org-")


async def test_verify_lists_every_organization_joined(bus: Bus, new_user: MakeActor) -> None:
    token, me = await new_user()
    assert me.organizations == []
    names = [f"org-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for name in names:
        request = c.CreateOrganization(account_id=me.account.id, username=name, name=name)
        await bus.request(c.CREATE_ORGANIZATION, request)

    caller = await verify(bus, token)

    assert caller.organizations == names
    assert caller.is_admin is False


@pytest.mark.parametrize(
    "token",
    [
        "r8_" + "x" * 37,
        "not-a-token",
        "",
        "r8_" + "a" * 5000,
        "'; DROP TABLE registry.api_tokens; --",
        "\u00e9\u4e2d\U0001f600",
    ],
    ids=["well-formed-unknown", "garbage", "empty", "huge", "sql", "unicode"],
)
async def test_unknown_tokens_are_unauthenticated(bus: Bus, token: str) -> None:
    await assert_rejected(bus, token)


async def test_a_revoked_token_stops_working(bus: Bus, new_user: MakeActor) -> None:
    token, me = await new_user()
    spare = await bus.request(c.CREATE_TOKEN, c.CreateToken(account_id=me.account.id, name="spare"))

    await bus.request(c.REVOKE_TOKEN, c.RevokeToken(account_id=me.account.id, token_id=me.token_id))

    await assert_rejected(bus, token)
    assert (await verify(bus, spare.token)).account.id == me.account.id
    listed = await bus.request(c.LIST_TOKENS, c.CallerRef(account_id=me.account.id))
    assert [t.id for t in listed.results] == [spare.id]


async def test_revoking_twice_is_not_found(bus: Bus, new_user: MakeActor) -> None:
    _, me = await new_user()
    revoke = c.RevokeToken(account_id=me.account.id, token_id=me.token_id)
    await bus.request(c.REVOKE_TOKEN, revoke)

    with pytest.raises(NotFound):
        await bus.request(c.REVOKE_TOKEN, revoke)


async def test_new_tokens_have_replicates_format(bus: Bus, new_user: MakeActor) -> None:
    _, me = await new_user()
    secrets = set()
    for _ in range(5):
        created = await bus.request(
            c.CREATE_TOKEN, c.CreateToken(account_id=me.account.id, name="fmt")
        )
        assert TOKEN_FORMAT.fullmatch(created.token), created.token
        assert created.hint == created.token[:7]
        assert created.name == "fmt"
        assert created.last_used_at is None
        secrets.add(created.token)
    assert len(secrets) == 5


async def test_tokens_are_stored_as_sha256_only(
    bus: Bus, db: AsyncEngine, new_user: MakeActor
) -> None:
    _, me = await new_user()
    created = await bus.request(c.CREATE_TOKEN, c.CreateToken(account_id=me.account.id, name="h"))

    async with db.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT token_hash, hint FROM registry.api_tokens WHERE id = :id"),
                {"id": created.id},
            )
        ).one()
        whole_table = (
            await conn.execute(text("SELECT t::text FROM registry.api_tokens AS t"))
        ).scalars()
        dump = "\n".join(whole_table)

    assert row.token_hash == hashlib.sha256(created.token.encode()).hexdigest()
    assert row.hint == created.token[:7]
    assert created.token not in dump
    assert created.token[3:] not in dump
    assert row.token_hash in dump


async def test_listing_tokens_never_shows_a_secret(bus: Bus, new_user: MakeActor) -> None:
    first, me = await new_user()
    second = await bus.request(c.CREATE_TOKEN, c.CreateToken(account_id=me.account.id, name="b"))
    request = c.CallerRef(account_id=me.account.id)

    # Read the raw reply: the typed client would silently drop an unexpected field.
    raw = await bus.nc.request(c.LIST_TOKENS.subject, request.model_dump_json().encode(), timeout=5)
    reply = json.loads(raw.data)

    assert reply["ok"] is True
    results = reply["result"]["results"]
    assert [t["id"] for t in results] == [second.id, me.token_id]  # newest first
    for info in results:
        assert set(info) == {"id", "name", "hint", "created_at", "last_used_at"}
    assert first not in raw.data.decode()
    assert second.token not in raw.data.decode()


async def test_verify_records_when_a_token_was_last_used(bus: Bus, new_user: MakeActor) -> None:
    _, me = await new_user()
    created = await bus.request(c.CREATE_TOKEN, c.CreateToken(account_id=me.account.id, name="u"))

    await verify(bus, created.token)

    listed = await bus.request(c.LIST_TOKENS, c.CallerRef(account_id=me.account.id))
    used = next(t for t in listed.results if t.id == created.id)
    assert used.last_used_at is not None
    assert used.last_used_at >= created.created_at


async def test_revoking_someone_elses_token_is_not_found(
    bus: Bus, new_user: MakeActor, new_admin: MakeActor
) -> None:
    victim_token, victim = await new_user()
    _, attacker = await new_user()
    _, admin = await new_admin()

    for who in (attacker, admin):
        with pytest.raises(NotFound) as caught:
            await bus.request(
                c.REVOKE_TOKEN, c.RevokeToken(account_id=who.account.id, token_id=victim.token_id)
            )
        assert caught.value.status == 404

    assert (await verify(bus, victim_token)).account.id == victim.account.id


async def test_revoking_an_unknown_token_is_not_found(bus: Bus, new_user: MakeActor) -> None:
    _, me = await new_user()
    with pytest.raises(NotFound):
        await bus.request(
            c.REVOKE_TOKEN, c.RevokeToken(account_id=me.account.id, token_id=uuid.uuid4().hex)
        )


async def test_an_unknown_caller_cannot_create_tokens(bus: Bus) -> None:
    with pytest.raises(Unauthenticated):
        await bus.request(c.CREATE_TOKEN, c.CreateToken(account_id=uuid.uuid4().hex, name="x"))


async def test_an_organization_cannot_own_tokens(bus: Bus, new_admin: MakeActor) -> None:
    _, admin = await new_admin()
    memberships = await bus.request(c.LIST_MEMBERSHIPS, c.CallerRef(account_id=admin.account.id))
    org_id = memberships.results[0].organization.id

    with pytest.raises(Unauthenticated):
        await bus.request(c.CREATE_TOKEN, c.CreateToken(account_id=org_id, name="x"))


@pytest.mark.parametrize("name", ["", "n" * 101])
async def test_token_names_are_validated(bus: Bus, new_user: MakeActor, name: str) -> None:
    _, me = await new_user()
    request = c.CreateToken.model_construct(account_id=me.account.id, name=name)

    with pytest.raises(CogplaneError) as caught:
        await bus.request(c.CREATE_TOKEN, request)

    assert caught.value.status == 422
    assert [f["field"] for f in caught.value.extra["invalid_fields"]] == ["name"]
    listed = await bus.request(c.LIST_TOKENS, c.CallerRef(account_id=me.account.id))
    assert [t.id for t in listed.results] == [me.token_id]
