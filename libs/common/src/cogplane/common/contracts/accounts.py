"""Accounts and API tokens: the registry's request-reply calls."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from cogplane.common.contracts.base import Broadcast, Contract, Empty, Rpc

USERNAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,37}[a-z0-9])?$"


class Account(Contract):
    """A user or an organization, as Replicate's ``GET /v1/account`` shows it."""

    id: str
    type: Literal["user", "organization"]
    username: str
    name: str
    github_url: str | None = None
    created_at: datetime


class Caller(Contract):
    """Who made a request: the user a token belongs to and the organizations they belong to."""

    account: Account
    token_id: str
    organizations: list[str] = Field(default_factory=list)
    is_admin: bool = False


class VerifyToken(Contract):
    token: str


class CallerRef(Contract):
    """Identifies the caller of an account operation (checked by the registry)."""

    account_id: str


class TokenInfo(Contract):
    id: str
    name: str
    hint: str = Field(description="The token's first characters, to tell tokens apart.")
    created_at: datetime
    last_used_at: datetime | None = None


class CreateToken(CallerRef):
    name: str = Field(min_length=1, max_length=100)


class CreatedToken(TokenInfo):
    token: str = Field(description="The secret; shown once and never stored in clear.")


class TokenList(Contract):
    results: list[TokenInfo]


class RevokeToken(CallerRef):
    token_id: str


class CreateOrganization(CallerRef):
    username: str = Field(pattern=USERNAME_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    github_url: str | None = Field(default=None, max_length=500)


class Membership(Contract):
    organization: Account
    role: Literal["owner", "member"]


class MembershipList(Contract):
    results: list[Membership]


class MemberRequest(CallerRef):
    organization: str
    username: str


class Member(Contract):
    account: Account
    role: Literal["owner", "member"]


class MemberList(Contract):
    results: list[Member]


class OrganizationRef(CallerRef):
    organization: str


class CreateUser(CallerRef):
    username: str = Field(pattern=USERNAME_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    github_url: str | None = Field(default=None, max_length=500)
    is_admin: bool = False


class AccountsChanged(Broadcast):
    """Tokens were revoked or memberships changed: cached callers of these must be dropped."""

    subject_suffix: ClassVar[str] = "accounts.changed"
    account_ids: list[str] = Field(default_factory=list)
    token_ids: list[str] = Field(default_factory=list)


class DevBootstrap(Contract):
    """Ensure a development administrator and organization exist; issue a token."""

    username: str = Field(pattern=USERNAME_PATTERN)
    organization: str = Field(pattern=USERNAME_PATTERN)


class DevAccount(Contract):
    account: Account
    organization: Account
    token: str


VERIFY_TOKEN = Rpc("registry.tokens.verify", VerifyToken, Caller)
CREATE_TOKEN = Rpc("registry.tokens.create", CreateToken, CreatedToken)
LIST_TOKENS = Rpc("registry.tokens.list", CallerRef, TokenList)
REVOKE_TOKEN = Rpc("registry.tokens.revoke", RevokeToken, Empty)
CREATE_USER = Rpc("registry.users.create", CreateUser, Account)
CREATE_ORGANIZATION = Rpc("registry.organizations.create", CreateOrganization, Account)
LIST_MEMBERSHIPS = Rpc("registry.organizations.mine", CallerRef, MembershipList)
LIST_MEMBERS = Rpc("registry.organizations.members", OrganizationRef, MemberList)
ADD_MEMBER = Rpc("registry.organizations.add_member", MemberRequest, Member)
REMOVE_MEMBER = Rpc("registry.organizations.remove_member", MemberRequest, Empty)
DEV_BOOTSTRAP = Rpc("registry.dev.bootstrap", DevBootstrap, DevAccount)
