"""All SQL of the accounts domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from cogplane.registry.models import AccountRow, MembershipRow, TokenRow


class AccountRepository:
    """Accounts, memberships and tokens."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: AccountRow | MembershipRow | TokenRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def by_id(self, account_id: str) -> AccountRow | None:
        return await self.session.get(AccountRow, account_id)

    async def by_username(self, username: str) -> AccountRow | None:
        query = select(AccountRow).where(AccountRow.username == username)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def active_token(self, token_hash: str) -> TokenRow | None:
        query = (
            select(TokenRow)
            .options(joinedload(TokenRow.account))
            .where(TokenRow.token_hash == token_hash, TokenRow.revoked_at.is_(None))
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def touch_token(self, token_id: str, when: datetime) -> None:
        await self.session.execute(
            update(TokenRow).where(TokenRow.id == token_id).values(last_used_at=when)
        )

    async def tokens_of(self, account_id: str) -> list[TokenRow]:
        query = (
            select(TokenRow)
            .where(TokenRow.account_id == account_id, TokenRow.revoked_at.is_(None))
            .order_by(TokenRow.created_at.desc())
        )
        return list((await self.session.execute(query)).scalars())

    async def token_of(self, account_id: str, token_id: str) -> TokenRow | None:
        query = select(TokenRow).where(
            TokenRow.id == token_id,
            TokenRow.account_id == account_id,
            TokenRow.revoked_at.is_(None),
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def memberships_of(self, user_id: str) -> list[MembershipRow]:
        query = (
            select(MembershipRow)
            .options(joinedload(MembershipRow.organization))
            .where(MembershipRow.user_id == user_id)
            .order_by(MembershipRow.created_at)
        )
        return list((await self.session.execute(query)).scalars())

    async def members_of(self, organization_id: str) -> list[MembershipRow]:
        query = (
            select(MembershipRow)
            .options(joinedload(MembershipRow.user))
            .where(MembershipRow.organization_id == organization_id)
            .order_by(MembershipRow.created_at)
        )
        return list((await self.session.execute(query)).scalars())

    async def membership(self, organization_id: str, user_id: str) -> MembershipRow | None:
        query = select(MembershipRow).where(
            MembershipRow.organization_id == organization_id, MembershipRow.user_id == user_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def count_owners(self, organization_id: str) -> int:
        query = select(func.count()).where(
            MembershipRow.organization_id == organization_id, MembershipRow.role == "owner"
        )
        return int((await self.session.execute(query)).scalar_one())

    async def delete(self, row: MembershipRow) -> None:
        await self.session.delete(row)
        await self.session.flush()
