"""The scheduler's tables (schema ``scheduler``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cogplane.common.db import TYPE_ANNOTATION_MAP, schema_metadata

SCHEMA = "scheduler"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)
    type_annotation_map = TYPE_ANNOTATION_MAP


class RunnerNodeRow(Base):
    """A runner node and the hardware it offers, as of its last heartbeat."""

    __tablename__ = "runner_nodes"

    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    last_event_at: Mapped[datetime]
    capacity: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    draining: Mapped[bool] = mapped_column(default=False)
    stopped: Mapped[bool] = mapped_column(default=False)


# The work domain's tables share this metadata (imported so migrations see every table).
from cogplane.scheduler import retention as _retention_index  # noqa: E402, F401
from cogplane.scheduler.webhooks import models as _webhook_tables  # noqa: E402, F401
from cogplane.scheduler.work import models as _work_tables  # noqa: E402, F401
