"""Billing's tables (schema ``billing``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cogplane.common.db import TYPE_ANNOTATION_MAP, schema_metadata, utcnow

SCHEMA = "billing"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)
    type_annotation_map = TYPE_ANNOTATION_MAP


class RecordedEventRow(Base):
    """Every event billing took in, keyed by event id: a redelivery is recognised, skipped."""

    __tablename__ = "recorded_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
