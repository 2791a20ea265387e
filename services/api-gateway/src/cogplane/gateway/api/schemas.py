"""Request and response bodies of the gateway's own account endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cogplane.common.contracts.accounts import USERNAME_PATTERN
from cogplane.common.contracts.base import NulFree


class Body(NulFree):
    """Request bodies reject unknown fields and NUL characters, reported rather than ignored."""

    model_config = ConfigDict(extra="forbid")


class AccountOut(BaseModel):
    """Replicate's account object."""

    type: Literal["user", "organization"]
    username: str
    name: str
    github_url: str | None = None


class TokenCreate(Body):
    name: str = Field(
        default="api", min_length=1, max_length=100, description="A label for the token."
    )


class TokenOut(BaseModel):
    id: str
    name: str
    hint: str
    created_at: datetime
    last_used_at: datetime | None = None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret. It is shown only once.")


class TokenPage(BaseModel):
    next: str | None = None
    previous: str | None = None
    results: list[TokenOut]


class OrganizationCreate(Body):
    username: str = Field(
        pattern=USERNAME_PATTERN, description="Lowercase letters, digits, dashes."
    )
    name: str = Field(min_length=1, max_length=200)
    github_url: str | None = Field(default=None, max_length=500)


class UserCreate(OrganizationCreate):
    is_admin: bool = False


class MembershipOut(BaseModel):
    organization: AccountOut
    role: Literal["owner", "member"]


class MemberOut(BaseModel):
    account: AccountOut
    role: Literal["owner", "member"]


class MemberAdd(Body):
    username: str = Field(pattern=USERNAME_PATTERN)


class Page(BaseModel):
    next: str | None = None
    previous: str | None = None


class MembershipPage(Page):
    results: list[MembershipOut]


class MemberPage(Page):
    results: list[MemberOut]
