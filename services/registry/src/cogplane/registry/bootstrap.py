"""Create the development user, organization and a token (used by ``cogplane dev``)."""

from __future__ import annotations

import asyncio
import json

from cogplane.common.db import Database
from cogplane.registry.config import RegistrySettings
from cogplane.registry.models import MembershipRow
from cogplane.registry.repository import AccountRepository
from cogplane.registry.service import AccountService, to_account


async def bootstrap(
    settings: RegistrySettings, username: str, organization: str
) -> dict[str, object]:
    """Ensure ``username`` (an administrator) and ``organization`` exist; return a new token."""
    db = Database(settings, "registry-bootstrap")
    try:
        async with db.unit_of_work() as session:
            repo = AccountRepository(session)
            svc = AccountService(repo)
            user = await repo.by_username(username) or await svc.create_user(
                username, "Development user", None, is_admin=True
            )
            org = await repo.by_username(organization)
            if org is None:
                org = await svc.create_organization(
                    user.id, organization, "Development organization", None
                )
            elif await repo.membership(org.id, user.id) is None:
                await repo.add(MembershipRow(organization_id=org.id, user_id=user.id, role="owner"))
            token = await svc.create_token(user.id, "development")
            return {
                "account": to_account(user).model_dump(mode="json"),
                "organization": to_account(org).model_dump(mode="json"),
                "token": token.token,
            }
    finally:
        await db.close()


def main(username: str, organization: str) -> None:
    """Print the bootstrap result as JSON."""
    print(json.dumps(asyncio.run(bootstrap(RegistrySettings(), username, organization))))
