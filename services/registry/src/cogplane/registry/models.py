"""The registry's tables (schema ``registry``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from cogplane.common.contracts.base import new_id
from cogplane.common.db import TYPE_ANNOTATION_MAP, schema_metadata, utcnow

SCHEMA = "registry"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)
    type_annotation_map = TYPE_ANNOTATION_MAP


class AccountRow(Base):
    """A user or an organization; usernames share one namespace, as on Replicate."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    github_url: Mapped[str | None] = mapped_column(String(500))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MembershipRow(Base):
    """A user's membership of an organization."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("organization_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("registry.accounts.id", ondelete="CASCADE")
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("registry.accounts.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organization: Mapped[AccountRow] = relationship(foreign_keys=[organization_id], lazy="raise")
    user: Mapped[AccountRow] = relationship(foreign_keys=[user_id], lazy="raise")


class TokenRow(Base):
    """An API token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("registry.accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    account: Mapped[AccountRow] = relationship(lazy="raise")


# The other domains' tables share this metadata (imported here so migrations see them all).
from cogplane.registry.catalog import models as _catalog_tables  # noqa: E402, F401
from cogplane.registry.deployments import models as _deployment_tables  # noqa: E402, F401
from cogplane.registry.files import models as _file_tables  # noqa: E402, F401
