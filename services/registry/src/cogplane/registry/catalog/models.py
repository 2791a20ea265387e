"""Tables of the catalog (schema ``registry``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cogplane.common.contracts.base import new_id
from cogplane.common.db import utcnow
from cogplane.registry.models import Base


class ModelRow(Base):
    """A model: an owner's named place for versions, public or private."""

    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("owner", "name"),
        Index("ix_models_created_at_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    visibility: Mapped[str] = mapped_column(String(16))
    hardware: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    github_url: Mapped[str | None] = mapped_column(String(500))
    paper_url: Mapped[str | None] = mapped_column(String(500))
    license_url: Mapped[str | None] = mapped_column(String(500))
    cover_image_url: Mapped[str | None] = mapped_column(String(500))
    run_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    latest_version_id: Mapped[str | None] = mapped_column(String(64))
    latest_version_at: Mapped[datetime | None]


class VersionRow(Base):
    """An immutable version; its id is the sha256 of the model, its source and its build recipe."""

    __tablename__ = "versions"
    __table_args__ = (Index("ix_versions_model_id_created_at", "model_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("registry.models.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cog_version: Mapped[str] = mapped_column(String(32))
    openapi_schema: Mapped[dict[str, Any]] = mapped_column(JSONB)
    python_version: Mapped[str] = mapped_column(String(16))
    predict: Mapped[str] = mapped_column(String(200))
    train: Mapped[str | None] = mapped_column(String(200))
    concurrency_max: Mapped[int | None]
    gpu: Mapped[bool] = mapped_column(default=False)
    env_key: Mapped[str] = mapped_column(String(64))
    source_object: Mapped[str] = mapped_column(String(100))
    source_digest: Mapped[str] = mapped_column(String(64))

    model: Mapped[ModelRow] = relationship(lazy="raise")


class BuildRow(Base):
    """A build of an upload: building, then ready (with a version) or failed (with an error)."""

    __tablename__ = "builds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    model_id: Mapped[str] = mapped_column(
        ForeignKey("registry.models.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="building")
    source_object: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    version_id: Mapped[str | None] = mapped_column(String(64))
    env_reused: Mapped[bool | None]
    duration_seconds: Mapped[float | None]

    model: Mapped[ModelRow] = relationship(lazy="raise")


class BuildLogRow(Base):
    """One chunk of build output; (build, seq) makes a redelivered chunk a no-op."""

    __tablename__ = "build_logs"

    build_id: Mapped[str] = mapped_column(
        ForeignKey("registry.builds.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
