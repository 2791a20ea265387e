"""Accounts domain logic: users, organizations, memberships and API tokens."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from cogplane.common.contracts.accounts import (
    Account,
    AccountsChanged,
    Caller,
    CreatedToken,
    Member,
    Membership,
    TokenInfo,
)
from cogplane.common.db import utcnow
from cogplane.common.errors import Conflict, Forbidden, NotFound, Unauthenticated
from cogplane.registry import tokens
from cogplane.registry.models import AccountRow, MembershipRow, TokenRow
from cogplane.registry.repository import AccountRepository

INVALID_TOKEN = "You did not pass a valid authentication token"  # noqa: S105 - a message
# Writing last_used_at on every request would make each call a write; a minute is precise enough.
TOUCH_INTERVAL = timedelta(minutes=1)


def to_account(row: AccountRow) -> Account:
    """The public view of an account row."""
    return Account(
        id=row.id,
        type=row.type,
        username=row.username,
        name=row.name,
        github_url=row.github_url,
        created_at=row.created_at,
    )


def to_token_info(row: TokenRow) -> TokenInfo:
    """The listing view of a token (never the secret)."""
    return TokenInfo(
        id=row.id,
        name=row.name,
        hint=row.hint,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


class AccountService:
    """Operations on accounts, each inside the caller's unit of work."""

    def __init__(self, repo: AccountRepository) -> None:
        self.repo = repo
        # What callers' caches must forget once this unit of work commits.
        self.changed = AccountsChanged()

    async def verify(self, token: str) -> Caller:
        """The caller a token belongs to, or 401."""
        row = await self.repo.active_token(tokens.digest(token.strip()))
        if row is None:
            raise Unauthenticated(INVALID_TOKEN)
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > TOUCH_INTERVAL:
            await self.repo.touch_token(row.id, now)
        memberships = await self.repo.memberships_of(row.account_id)
        return Caller(
            account=to_account(row.account),
            token_id=row.id,
            organizations=[m.organization.username for m in memberships],
            is_admin=row.account.is_admin,
        )

    async def user(self, account_id: str) -> AccountRow:
        """The calling user (the gateway only forwards ids of verified users)."""
        row = await self.repo.by_id(account_id)
        if row is None or row.type != "user":
            raise Unauthenticated(INVALID_TOKEN)
        return row

    async def create_token(self, account_id: str, name: str) -> CreatedToken:
        """A new token for the user; the secret is returned once."""
        await self.user(account_id)
        secret = tokens.generate()
        row = TokenRow(
            account_id=account_id,
            name=name,
            token_hash=tokens.digest(secret),
            hint=tokens.hint(secret),
            created_at=utcnow(),
        )
        await self.repo.add(row)
        return CreatedToken(**to_token_info(row).model_dump(), token=secret)

    async def list_tokens(self, account_id: str) -> list[TokenInfo]:
        """The user's active tokens, newest first."""
        return [to_token_info(row) for row in await self.repo.tokens_of(account_id)]

    async def revoke_token(self, account_id: str, token_id: str) -> None:
        """Revoke one of the user's tokens; another account's token is not found."""
        row = await self.repo.token_of(account_id, token_id)
        if row is None:
            raise NotFound("Token not found")
        row.revoked_at = utcnow()
        self.changed.token_ids.append(row.id)

    async def create_user(
        self, username: str, name: str, github_url: str | None, *, is_admin: bool = False
    ) -> AccountRow:
        """A new user; usernames are unique across users and organizations."""
        return await self._create_account("user", username, name, github_url, is_admin=is_admin)

    async def create_organization(
        self, creator_id: str, username: str, name: str, github_url: str | None
    ) -> AccountRow:
        """A new organization owned by its creator."""
        creator = await self.user(creator_id)
        org = await self._create_account("organization", username, name, github_url)
        await self.repo.add(MembershipRow(organization_id=org.id, user_id=creator.id, role="owner"))
        self.changed.account_ids.append(creator.id)
        return org

    async def _create_account(
        self, kind: str, username: str, name: str, github_url: str | None, *, is_admin: bool = False
    ) -> AccountRow:
        if await self.repo.by_username(username) is not None:
            raise Conflict(f"The username {username!r} is already taken")
        row = AccountRow(
            type=kind,
            username=username,
            name=name,
            github_url=github_url,
            is_admin=is_admin,
            created_at=utcnow(),
        )
        try:
            await self.repo.add(row)
        except IntegrityError as exc:  # a concurrent create won the race
            raise Conflict(f"The username {username!r} is already taken") from exc
        return row

    async def memberships(self, user_id: str) -> list[Membership]:
        """The organizations the user belongs to."""
        rows = await self.repo.memberships_of(user_id)
        return [Membership(organization=to_account(m.organization), role=m.role) for m in rows]

    async def _organization_of_member(
        self, user_id: str, organization: str
    ) -> tuple[AccountRow, MembershipRow]:
        org = await self.repo.by_username(organization)
        membership = None if org is None else await self.repo.membership(org.id, user_id)
        if org is None or org.type != "organization" or membership is None:
            raise NotFound(f"Organization {organization!r} not found")
        return org, membership

    async def members(self, user_id: str, organization: str) -> list[Member]:
        """Members of an organization the caller belongs to."""
        org, _ = await self._organization_of_member(user_id, organization)
        rows = await self.repo.members_of(org.id)
        return [Member(account=to_account(m.user), role=m.role) for m in rows]

    async def add_member(self, owner_id: str, organization: str, username: str) -> Member:
        """Add a user to an organization (owners only)."""
        org, mine = await self._organization_of_member(owner_id, organization)
        if mine.role != "owner":
            raise Forbidden("Only owners of the organization can add members")
        user = await self.repo.by_username(username)
        if user is None or user.type != "user":
            raise NotFound(f"User {username!r} not found")
        if await self.repo.membership(org.id, user.id) is not None:
            raise Conflict(f"{username!r} is already a member of {organization!r}")
        await self.repo.add(MembershipRow(organization_id=org.id, user_id=user.id, role="member"))
        self.changed.account_ids.append(user.id)
        return Member(account=to_account(user), role="member")

    async def remove_member(self, owner_id: str, organization: str, username: str) -> None:
        """Remove a member (owners, or members removing themselves); the last owner stays."""
        org, mine = await self._organization_of_member(owner_id, organization)
        user = await self.repo.by_username(username)
        target = None if user is None else await self.repo.membership(org.id, user.id)
        if target is None:
            raise NotFound(f"{username!r} is not a member of {organization!r}")
        if mine.role != "owner" and target.user_id != owner_id:
            raise Forbidden("Only owners of the organization can remove other members")
        if target.role == "owner" and await self.repo.count_owners(org.id) == 1:
            raise Conflict("An organization must keep at least one owner")
        await self.repo.delete(target)
        self.changed.account_ids.append(target.user_id)
