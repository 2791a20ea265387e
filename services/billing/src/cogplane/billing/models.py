"""Billing's tables (schema ``billing``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Index, Numeric, String
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


class BilledInstanceRow(Base):
    """An instance as billing knows it: whose it is, its hardware, how far its report goes."""

    __tablename__ = "instances"

    instance_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str | None] = mapped_column(String(64))
    klass: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    deployment: Mapped[str | None] = mapped_column(String(200))
    hardware: Mapped[str] = mapped_column(String(64))
    node_id: Mapped[str] = mapped_column(String(64))
    end_seq: Mapped[int | None]
    lost_at: Mapped[datetime | None]
    lost_after_seq: Mapped[int | None]


class TransitionRow(Base):
    """One reported state of an instance (seq counts from 0; a gap is a lost report)."""

    __tablename__ = "transitions"

    instance_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    busy: Mapped[int]
    at: Mapped[datetime]
    monotonic: Mapped[float]


class LedgerRow(Base):
    """A metered piece of time: an instance's part of one day, or a prediction's processing.

    ``key`` makes every entry once only: ``i:{instance}:{seq}:{day part}`` for the time from an
    instance's transition ``seq`` to the next one, ``p:{prediction}`` for a prediction.
    """

    __tablename__ = "ledger"
    __table_args__ = (
        Index("ix_ledger_account_day", "account", "day"),
        Index("ix_ledger_instance", "instance_id"),
    )

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    account: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    charged: Mapped[bool]
    instance_id: Mapped[str | None] = mapped_column(String(64))
    prediction_id: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(200))
    deployment: Mapped[str | None] = mapped_column(String(200))
    hardware: Mapped[str] = mapped_column(String(64))
    day: Mapped[datetime]
    started_at: Mapped[datetime]
    milliseconds: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[Decimal] = mapped_column(Numeric(20, 9))
    cost: Mapped[Decimal] = mapped_column(Numeric(30, 15))
