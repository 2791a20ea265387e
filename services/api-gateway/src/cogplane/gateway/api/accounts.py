"""``/v1/account``, API tokens, users and organizations."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from cogplane.common.contracts import accounts as c
from cogplane.gateway.api.schemas import (
    AccountOut,
    MemberAdd,
    MemberOut,
    MemberPage,
    MembershipOut,
    MembershipPage,
    OrganizationCreate,
    TokenCreate,
    TokenCreated,
    TokenOut,
    TokenPage,
    UserCreate,
)
from cogplane.gateway.deps import BusDep, CurrentCaller

router = APIRouter(prefix="/v1", tags=["accounts"])


def _account(account: c.Account) -> AccountOut:
    return AccountOut.model_validate(account.model_dump())


@router.get("/account", response_model=AccountOut)
async def get_account(caller: CurrentCaller) -> AccountOut:
    """The account that owns the token."""
    return _account(caller.account)


@router.get("/tokens", response_model=TokenPage)
async def list_tokens(caller: CurrentCaller, bus: BusDep) -> TokenPage:
    """Your active API tokens (secrets are never shown again)."""
    tokens = await bus.request(c.LIST_TOKENS, c.CallerRef(account_id=caller.account.id))
    return TokenPage(results=[TokenOut.model_validate(t.model_dump()) for t in tokens.results])


@router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
async def create_token(
    caller: CurrentCaller, bus: BusDep, body: TokenCreate | None = None
) -> TokenCreated:
    """Create an API token; the response is the only time its secret is shown."""
    body = body or TokenCreate()
    created = await bus.request(
        c.CREATE_TOKEN, c.CreateToken(account_id=caller.account.id, name=body.name)
    )
    return TokenCreated.model_validate(created.model_dump())


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(token_id: str, caller: CurrentCaller, bus: BusDep) -> Response:
    """Revoke one of your tokens; it stops working at once."""
    await bus.request(
        c.REVOKE_TOKEN, c.RevokeToken(account_id=caller.account.id, token_id=token_id)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/users", response_model=AccountOut, status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, caller: CurrentCaller, bus: BusDep) -> AccountOut:
    """Create a user (administrators only)."""
    request = c.CreateUser(account_id=caller.account.id, **body.model_dump())
    return _account(await bus.request(c.CREATE_USER, request))


@router.get("/organizations", response_model=MembershipPage)
async def list_organizations(caller: CurrentCaller, bus: BusDep) -> MembershipPage:
    """The organizations you belong to, with your role."""
    found = await bus.request(c.LIST_MEMBERSHIPS, c.CallerRef(account_id=caller.account.id))
    return MembershipPage(
        results=[MembershipOut.model_validate(m.model_dump()) for m in found.results]
    )


@router.post("/organizations", response_model=AccountOut, status_code=status.HTTP_201_CREATED)
async def create_organization(
    body: OrganizationCreate, caller: CurrentCaller, bus: BusDep
) -> AccountOut:
    """Create an organization; you become its owner."""
    request = c.CreateOrganization(account_id=caller.account.id, **body.model_dump())
    return _account(await bus.request(c.CREATE_ORGANIZATION, request))


@router.get("/organizations/{organization}/members", response_model=MemberPage)
async def list_members(organization: str, caller: CurrentCaller, bus: BusDep) -> MemberPage:
    """Members of an organization you belong to."""
    ref = c.OrganizationRef(account_id=caller.account.id, organization=organization)
    found = await bus.request(c.LIST_MEMBERS, ref)
    return MemberPage(results=[MemberOut.model_validate(m.model_dump()) for m in found.results])


@router.post(
    "/organizations/{organization}/members",
    response_model=MemberOut,
    status_code=status.HTTP_201_CREATED,
)
async def add_member(
    organization: str, body: MemberAdd, caller: CurrentCaller, bus: BusDep
) -> MemberOut:
    """Add a user to an organization you own."""
    request = c.MemberRequest(
        account_id=caller.account.id, organization=organization, username=body.username
    )
    return MemberOut.model_validate((await bus.request(c.ADD_MEMBER, request)).model_dump())


@router.delete(
    "/organizations/{organization}/members/{username}", status_code=status.HTTP_204_NO_CONTENT
)
async def remove_member(
    organization: str, username: str, caller: CurrentCaller, bus: BusDep
) -> Response:
    """Remove a member (owners), or leave an organization (yourself)."""
    request = c.MemberRequest(
        account_id=caller.account.id, organization=organization, username=username
    )
    await bus.request(c.REMOVE_MEMBER, request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
