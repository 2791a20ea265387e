"""Organizations and memberships through the registry's request-reply calls."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from cogplane.common.bus import Bus
from cogplane.common.contracts import accounts as c
from cogplane.common.errors import CogplaneError, Conflict, Forbidden, InvalidInput, NotFound
from cogplane.registry.bootstrap import bootstrap
from cogplane.registry.config import RegistrySettings

Actor = tuple[str, c.Caller]
MakeActor = Callable[[], Awaitable[Actor]]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create_org(bus: Bus, owner: c.Caller) -> str:
    name = unique("org")
    request = c.CreateOrganization(account_id=owner.account.id, username=name, name="Acme")
    await bus.request(c.CREATE_ORGANIZATION, request)
    return name


async def members(bus: Bus, caller: c.Caller, org: str) -> list[tuple[str, str]]:
    ref = c.OrganizationRef(account_id=caller.account.id, organization=org)
    found = await bus.request(c.LIST_MEMBERS, ref)
    return [(m.account.username, m.role) for m in found.results]


async def add(bus: Bus, caller: c.Caller, org: str, username: str) -> c.Member:
    request = c.MemberRequest(account_id=caller.account.id, organization=org, username=username)
    return await bus.request(c.ADD_MEMBER, request)


async def remove(bus: Bus, caller: c.Caller, org: str, username: str) -> None:
    request = c.MemberRequest(account_id=caller.account.id, organization=org, username=username)
    await bus.request(c.REMOVE_MEMBER, request)


async def test_the_creator_owns_the_organization(bus: Bus, new_user: MakeActor) -> None:
    token, me = await new_user()
    name = unique("org")
    request = c.CreateOrganization(
        account_id=me.account.id, username=name, name="Acme", github_url="https://github.com/a"
    )

    org = await bus.request(c.CREATE_ORGANIZATION, request)

    assert (org.type, org.username, org.name) == ("organization", name, "Acme")
    assert org.github_url == "https://github.com/a"
    assert await members(bus, me, name) == [(me.account.username, "owner")]
    mine = await bus.request(c.LIST_MEMBERSHIPS, c.CallerRef(account_id=me.account.id))
    assert [(m.organization.username, m.role) for m in mine.results] == [(name, "owner")]
    assert mine.results[0].organization.id == org.id
    caller = await bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=token))
    assert caller.organizations == [name]


@pytest.mark.parametrize(("username", "name"), [("Acme", "Acme"), ("acme_co", "A"), ("ok", "")])
async def test_invalid_organizations_are_refused(
    bus: Bus, new_user: MakeActor, username: str, name: str
) -> None:
    _, me = await new_user()
    request = c.CreateOrganization.model_construct(
        account_id=me.account.id, username=username, name=name
    )

    with pytest.raises(InvalidInput) as caught:
        await bus.request(c.CREATE_ORGANIZATION, request)

    expected = "username" if username != "ok" else "name"
    assert [f["field"] for f in caught.value.extra["invalid_fields"]] == [expected]
    mine = await bus.request(c.LIST_MEMBERSHIPS, c.CallerRef(account_id=me.account.id))
    assert mine.results == []


async def test_an_owner_adds_members(bus: Bus, new_user: MakeActor) -> None:
    _, owner = await new_user()
    member_token, member = await new_user()
    org = await create_org(bus, owner)

    added = await add(bus, owner, org, member.account.username)

    assert added.role == "member"
    assert added.account.id == member.account.id
    assert await members(bus, owner, org) == [
        (owner.account.username, "owner"),
        (member.account.username, "member"),
    ]
    assert await members(bus, member, org) == await members(bus, owner, org)
    caller = await bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=member_token))
    assert caller.organizations == [org]
    mine = await bus.request(c.LIST_MEMBERSHIPS, c.CallerRef(account_id=member.account.id))
    assert [(m.organization.username, m.role) for m in mine.results] == [(org, "member")]


async def test_a_plain_member_cannot_add_members(bus: Bus, new_user: MakeActor) -> None:
    _, owner = await new_user()
    _, member = await new_user()
    _, outsider = await new_user()
    org = await create_org(bus, owner)
    await add(bus, owner, org, member.account.username)

    with pytest.raises(Forbidden) as caught:
        await add(bus, member, org, outsider.account.username)

    assert caught.value.status == 403
    assert len(await members(bus, owner, org)) == 2


async def test_adding_a_member_twice_conflicts(bus: Bus, new_user: MakeActor) -> None:
    _, owner = await new_user()
    _, member = await new_user()
    org = await create_org(bus, owner)
    await add(bus, owner, org, member.account.username)

    with pytest.raises(Conflict):
        await add(bus, owner, org, member.account.username)
    with pytest.raises(Conflict):
        await add(bus, owner, org, owner.account.username)

    assert len(await members(bus, owner, org)) == 2


async def test_adding_an_unknown_user_is_not_found(bus: Bus, new_user: MakeActor) -> None:
    _, owner = await new_user()
    org = await create_org(bus, owner)
    other_org = await create_org(bus, owner)

    for username in (unique("ghost"), other_org):  # an organization is not a user
        with pytest.raises(NotFound):
            await add(bus, owner, org, username)

    assert await members(bus, owner, org) == [(owner.account.username, "owner")]


async def test_outsiders_cannot_tell_an_organization_exists(bus: Bus, new_user: MakeActor) -> None:
    _, owner = await new_user()
    _, outsider = await new_user()
    org = await create_org(bus, owner)
    ghost = unique("org")

    problems = {}
    for name in (org, ghost, owner.account.username):  # real, missing, and a user's name
        with pytest.raises(NotFound) as caught:
            await members(bus, outsider, name)
        problems[name] = caught.value.to_problem()

    for name, problem in problems.items():
        assert problem == {
            "title": "Not found",
            "detail": f"Organization {name!r} not found",
            "status": 404,
        }
    for call in (add, remove):
        with pytest.raises(NotFound):
            await call(bus, outsider, org, outsider.account.username)
        with pytest.raises(NotFound):
            await call(bus, outsider, org, owner.account.username)
    assert await members(bus, owner, org) == [(owner.account.username, "owner")]


async def test_an_owner_removes_a_member(bus: Bus, new_user: MakeActor) -> None:
    _, owner = await new_user()
    member_token, member = await new_user()
    org = await create_org(bus, owner)
    await add(bus, owner, org, member.account.username)

    await remove(bus, owner, org, member.account.username)

    assert await members(bus, owner, org) == [(owner.account.username, "owner")]
    caller = await bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=member_token))
    assert caller.organizations == []
    with pytest.raises(NotFound):
        await members(bus, member, org)
    with pytest.raises(NotFound):
        await remove(bus, owner, org, member.account.username)


async def test_a_plain_member_cannot_remove_others(bus: Bus, new_user: MakeActor) -> None:
    _, owner = await new_user()
    _, first = await new_user()
    _, second = await new_user()
    org = await create_org(bus, owner)
    for user in (first, second):
        await add(bus, owner, org, user.account.username)

    for target in (second, owner):
        with pytest.raises(Forbidden):
            await remove(bus, first, org, target.account.username)

    assert len(await members(bus, owner, org)) == 3


async def test_a_member_can_leave(bus: Bus, new_user: MakeActor) -> None:
    _, owner = await new_user()
    _, member = await new_user()
    org = await create_org(bus, owner)
    await add(bus, owner, org, member.account.username)

    await remove(bus, member, org, member.account.username)

    assert await members(bus, owner, org) == [(owner.account.username, "owner")]
    mine = await bus.request(c.LIST_MEMBERSHIPS, c.CallerRef(account_id=member.account.id))
    assert mine.results == []


async def test_the_last_owner_cannot_leave(bus: Bus, new_user: MakeActor) -> None:
    _, owner = await new_user()
    _, member = await new_user()
    org = await create_org(bus, owner)
    await add(bus, owner, org, member.account.username)

    with pytest.raises(Conflict) as caught:
        await remove(bus, owner, org, owner.account.username)

    assert caught.value.detail == "An organization must keep at least one owner"
    assert await members(bus, owner, org) == [
        (owner.account.username, "owner"),
        (member.account.username, "member"),
    ]


async def test_one_of_two_owners_can_leave_but_not_both(
    bus: Bus, new_user: MakeActor, registry_settings: RegistrySettings
) -> None:
    _, owner = await new_user()
    org = await create_org(bus, owner)
    # bootstrap makes its user an owner of an existing organization: the only way to a 2nd owner
    second = await bootstrap(registry_settings, unique("admin"), org)
    second_name = str(second["account"]["username"])  # type: ignore[index]
    assert await members(bus, owner, org) == [
        (owner.account.username, "owner"),
        (second_name, "owner"),
    ]

    await remove(bus, owner, org, owner.account.username)

    second_caller = await bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=str(second["token"])))
    assert await members(bus, second_caller, org) == [(second_name, "owner")]
    with pytest.raises(Conflict):
        await remove(bus, second_caller, org, second_name)


# model_construct skips the client-side check: the registry must refuse NUL by itself.
NUL_REQUESTS = {
    "revoke-token": lambda me, org: (
        c.REVOKE_TOKEN,
        c.RevokeToken.model_construct(account_id=me, token_id="\x00"),
    ),
    "list-members": lambda me, org: (
        c.LIST_MEMBERS,
        c.OrganizationRef.model_construct(account_id=me, organization="\x00"),
    ),
    "add-member": lambda me, org: (
        c.ADD_MEMBER,
        c.MemberRequest.model_construct(account_id=me, organization=org, username="a\x00"),
    ),
    "remove-member": lambda me, org: (
        c.REMOVE_MEMBER,
        c.MemberRequest.model_construct(account_id=me, organization=org, username="a\x00"),
    ),
}


@pytest.mark.parametrize("call", list(NUL_REQUESTS))
async def test_a_nul_character_is_an_expected_error(
    bus: Bus, new_user: MakeActor, call: str
) -> None:
    _, me = await new_user()
    org = await create_org(bus, me)
    rpc, request = NUL_REQUESTS[call](me.account.id, org)

    with pytest.raises(CogplaneError) as caught:
        await bus.request(rpc, request)

    assert caught.value.status == 422
