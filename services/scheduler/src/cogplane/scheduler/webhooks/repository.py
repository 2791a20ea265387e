"""All SQL of signing secrets and keys."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cogplane.scheduler.webhooks.models import SigningKeyRow, WebhookSecretRow


class KeyRepository:
    """Secrets that are created once and never change afterwards."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def webhook_secret(self, account_id: str, candidate: str) -> str:
        """The account's secret; ``candidate`` becomes it if it has none (races agree)."""
        statement = insert(WebhookSecretRow).values(account_id=account_id, key=candidate)
        await self.session.execute(statement.on_conflict_do_nothing())
        query = select(WebhookSecretRow.key).where(WebhookSecretRow.account_id == account_id)
        return (await self.session.execute(query)).scalar_one()

    async def signing_key(self, name: str, candidate: str) -> str:
        """The platform key ``name``; ``candidate`` becomes it if there is none yet."""
        statement = insert(SigningKeyRow).values(name=name, key=candidate)
        await self.session.execute(statement.on_conflict_do_nothing())
        query = select(SigningKeyRow.key).where(SigningKeyRow.name == name)
        return (await self.session.execute(query)).scalar_one()
