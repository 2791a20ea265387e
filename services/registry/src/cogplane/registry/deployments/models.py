"""Tables of deployments (schema ``registry``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cogplane.common.contracts.base import new_id
from cogplane.common.db import utcnow
from cogplane.registry.models import Base

if TYPE_CHECKING:
    from cogplane.registry.catalog.models import ModelRow
    from cogplane.registry.models import AccountRow


class DeploymentRow(Base):
    """A deployment; what it runs now is its release number ``release``.

    The current model and version are kept here too so that the database itself refuses to
    delete a model or version a deployment runs (the releases keep history, not references).
    """

    __tablename__ = "deployments"
    __table_args__ = (
        UniqueConstraint("owner", "name"),
        Index("ix_deployments_created_at_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64))
    owner_account_id: Mapped[str] = mapped_column(
        ForeignKey("registry.accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    release: Mapped[int]
    model_id: Mapped[str] = mapped_column(ForeignKey("registry.models.id"), index=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("registry.versions.id"), index=True)

    model: Mapped[ModelRow] = relationship(lazy="raise")


class ReleaseRow(Base):
    """One numbered release: the version, hardware and instance limits from then on."""

    __tablename__ = "deployment_releases"

    deployment_id: Mapped[str] = mapped_column(
        ForeignKey("registry.deployments.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(primary_key=True)
    # No foreign key: an old release may name a version deleted since.
    version_id: Mapped[str] = mapped_column(String(64))
    hardware: Mapped[str] = mapped_column(String(64))
    min_instances: Mapped[int]
    max_instances: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[str] = mapped_column(ForeignKey("registry.accounts.id"))

    created_by: Mapped[AccountRow] = relationship(lazy="raise")
