"""The registry's NATS handlers: request-reply calls of the accounts domain."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from cogplane.common.contracts import accounts as c
from cogplane.common.contracts.base import Contract, Empty, Req, Resp, Rpc
from cogplane.common.errors import Forbidden
from cogplane.common.service import Runtime
from cogplane.registry.bootstrap import ensure_admin
from cogplane.registry.config import RegistrySettings
from cogplane.registry.repository import AccountRepository
from cogplane.registry.service import AccountService, to_account

Handler = Callable[[AccountService, Any], Awaitable[Contract]]


async def _verify(svc: AccountService, req: c.VerifyToken) -> c.Caller:
    return await svc.verify(req.token)


async def _create_token(svc: AccountService, req: c.CreateToken) -> c.CreatedToken:
    return await svc.create_token(req.account_id, req.name)


async def _list_tokens(svc: AccountService, req: c.CallerRef) -> c.TokenList:
    return c.TokenList(results=await svc.list_tokens(req.account_id))


async def _revoke_token(svc: AccountService, req: c.RevokeToken) -> Empty:
    await svc.revoke_token(req.account_id, req.token_id)
    return Empty()


async def _create_user(svc: AccountService, req: c.CreateUser) -> c.Account:
    caller = await svc.user(req.account_id)
    if not caller.is_admin:
        raise Forbidden("Only administrators can create users")
    row = await svc.create_user(req.username, req.name, req.github_url, is_admin=req.is_admin)
    return to_account(row)


async def _create_org(svc: AccountService, req: c.CreateOrganization) -> c.Account:
    return to_account(
        await svc.create_organization(req.account_id, req.username, req.name, req.github_url)
    )


async def _memberships(svc: AccountService, req: c.CallerRef) -> c.MembershipList:
    return c.MembershipList(results=await svc.memberships(req.account_id))


async def _members(svc: AccountService, req: c.OrganizationRef) -> c.MemberList:
    return c.MemberList(results=await svc.members(req.account_id, req.organization))


async def _add_member(svc: AccountService, req: c.MemberRequest) -> c.Member:
    return await svc.add_member(req.account_id, req.organization, req.username)


async def _remove_member(svc: AccountService, req: c.MemberRequest) -> Empty:
    await svc.remove_member(req.account_id, req.organization, req.username)
    return Empty()


HANDLERS: list[tuple[Rpc[Any, Any], Handler]] = [
    (c.VERIFY_TOKEN, _verify),
    (c.CREATE_TOKEN, _create_token),
    (c.LIST_TOKENS, _list_tokens),
    (c.REVOKE_TOKEN, _revoke_token),
    (c.CREATE_USER, _create_user),
    (c.CREATE_ORGANIZATION, _create_org),
    (c.LIST_MEMBERSHIPS, _memberships),
    (c.LIST_MEMBERS, _members),
    (c.ADD_MEMBER, _add_member),
    (c.REMOVE_MEMBER, _remove_member),
]


def _in_unit_of_work(rt: Runtime, handler: Handler) -> Callable[[Req], Awaitable[Resp]]:
    async def run(request: Req) -> Resp:
        async with rt.require_db().unit_of_work() as session:
            svc = AccountService(AccountRepository(session))
            result = await handler(svc, request)
        if svc.changed.account_ids or svc.changed.token_ids:  # after the commit, never before
            await rt.bus.broadcast(svc.changed)
        return result  # type: ignore[return-value]

    return run


async def _dev_bootstrap(svc: AccountService, req: c.DevBootstrap) -> c.DevAccount:
    return await ensure_admin(svc, req.username, req.organization)


async def register(rt: Runtime) -> None:
    """Serve every accounts call, one transaction per request."""
    for rpc, handler in HANDLERS:
        await rt.bus.serve(rpc, _in_unit_of_work(rt, handler))
    settings = rt.settings
    assert isinstance(settings, RegistrySettings)
    if settings.allow_dev_bootstrap:
        await rt.bus.serve(c.DEV_BOOTSTRAP, _in_unit_of_work(rt, _dev_bootstrap))
