"""The first account: a development administrator, an organization and a token.

``cogplane dev`` asks for it over NATS (only when the registry allows it); an operator creates the
first administrator of a cluster with ``python -m cogplane.registry bootstrap USER ORG``.
"""

from __future__ import annotations

import asyncio

from cogplane.common.contracts.accounts import DevAccount
from cogplane.common.db import Database
from cogplane.registry.config import RegistrySettings
from cogplane.registry.models import MembershipRow
from cogplane.registry.repository import AccountRepository
from cogplane.registry.service import AccountService, to_account


async def ensure_admin(svc: AccountService, username: str, organization: str) -> DevAccount:
    """Ensure ``username`` (an administrator) owns ``organization``; issue a new token."""
    repo = svc.repo
    user = await repo.by_username(username) or await svc.create_user(
        username, "Development user", None, is_admin=True
    )
    org = await repo.by_username(organization)
    if org is None:
        org = await svc.create_organization(user.id, organization, "Development organization", None)
    elif await repo.membership(org.id, user.id) is None:
        await repo.add(MembershipRow(organization_id=org.id, user_id=user.id, role="owner"))
        svc.changed.account_ids.append(user.id)
    token = await svc.create_token(user.id, "development")
    return DevAccount(account=to_account(user), organization=to_account(org), token=token.token)


async def bootstrap(
    settings: RegistrySettings, username: str, organization: str
) -> dict[str, object]:
    """Run ``ensure_admin`` in its own unit of work; the result as JSON-ready data."""
    db = Database(settings, "registry-bootstrap")
    try:
        async with db.unit_of_work() as session:
            result = await ensure_admin(
                AccountService(AccountRepository(session)), username, organization
            )
        return result.model_dump(mode="json")
    finally:
        await db.close()


def main(username: str, organization: str) -> None:
    """Print the bootstrap result as JSON."""
    import json

    result = asyncio.run(bootstrap(RegistrySettings(), username, organization))
    print(json.dumps(result))
