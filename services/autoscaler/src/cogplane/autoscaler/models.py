"""The autoscaler's tables (schema ``autoscaler``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cogplane.common.contracts.base import new_id
from cogplane.common.db import TYPE_ANNOTATION_MAP, schema_metadata, utcnow

SCHEMA = "autoscaler"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)
    type_annotation_map = TYPE_ANNOTATION_MAP


class DecisionRow(Base):
    """An auditable scaling decision with the observation it was made from."""

    __tablename__ = "scaling_decisions"
    __table_args__ = (Index("ix_scaling_decisions_target_decided_at", "target", "decided_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    target: Mapped[str] = mapped_column(String(200))
    current: Mapped[int]
    desired: Mapped[int]
    reason: Mapped[str] = mapped_column(Text)
    observed: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class LeaseRow(Base):
    """Which autoscaler replica owns a target's decisions, until when."""

    __tablename__ = "leases"

    target: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]


class ReplicaRow(Base):
    """A running autoscaler replica, as of its last tick (to share targets fairly)."""

    __tablename__ = "replicas"

    holder: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime]


class SampleRow(Base):
    """A target's observed state at one moment, for monitoring's time series."""

    __tablename__ = "target_samples"
    __table_args__ = (Index("ix_target_samples_target_at", "target", "at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    target: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]
    queued: Mapped[int]
    inflight: Mapped[int]
    desired: Mapped[int]
    instances: Mapped[dict[str, int]] = mapped_column(JSONB, default=dict)
