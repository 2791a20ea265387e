"""Tables of predictions, targets and instances (schema ``scheduler``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cogplane.common.db import utcnow
from cogplane.scheduler.models import Base


class TargetRow(Base):
    """A queue with the instances that serve it: a version's shared pool, or a deployment.

    A deployment's target follows its releases: ``release`` is the one new instances run;
    instances of earlier releases are drained as those of this one become ready.
    """

    __tablename__ = "targets"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    version_spec: Mapped[dict[str, Any]] = mapped_column(JSONB)
    desired: Mapped[int] = mapped_column(default=0)
    desired_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(16), default="version", server_default="version")
    deployment: Mapped[str | None] = mapped_column(String(200))
    release: Mapped[int] = mapped_column(default=0, server_default="0")
    hardware: Mapped[str | None] = mapped_column(String(64))
    min_instances: Mapped[int] = mapped_column(default=0, server_default="0")
    # None: the shared pools' limit from the scheduler's settings.
    max_instances: Mapped[int | None]
    deleted: Mapped[bool] = mapped_column(default=False, server_default="false")


class InstanceRow(Base):
    """An instance as its runner last reported it."""

    __tablename__ = "instances"
    __table_args__ = (Index("ix_instances_target_state", "target", "state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    target: Mapped[str] = mapped_column(String(100))
    node_id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[str] = mapped_column(String(64))
    hardware: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(default=-1)
    slots: Mapped[int] = mapped_column(default=1)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    state_since: Mapped[datetime] = mapped_column(default=utcnow)
    release: Mapped[int] = mapped_column(default=0, server_default="0")
    # Set when the scheduler asked it to stop (drain): it takes no new work from then on.
    stopping: Mapped[bool] = mapped_column(default=False, server_default="false")


class PredictionRow(Base):
    """A prediction, from admission to its terminal state."""

    __tablename__ = "predictions"
    __table_args__ = (
        Index("ix_predictions_queue", "target", "status", "created_at"),
        Index("ix_predictions_owner_created", "owner_account_id", "created_at"),
        Index("ix_predictions_instance", "instance_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_account_id: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(100))
    input: Mapped[dict[str, Any]] = mapped_column(JSONB)
    output: Mapped[Any] = mapped_column(JSONB, nullable=True)
    logs: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(8), default="api")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    webhook: Mapped[str | None] = mapped_column(Text)
    webhook_events_filter: Mapped[list[str]] = mapped_column(JSONB, default=list)
    deadline: Mapped[datetime | None]
    instance_id: Mapped[str | None] = mapped_column(String(32))
    dispatched_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    update_seq: Mapped[int] = mapped_column(default=-1)
    streaming: Mapped[bool] = mapped_column(default=False)
    data_removed: Mapped[bool] = mapped_column(default=False)
    timings: Mapped[dict[str, float]] = mapped_column(JSONB, default=dict)
    # Output files in the outputs object store, removed with the prediction's data.
    deployment: Mapped[str | None] = mapped_column(String(200))
    output_objects: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
