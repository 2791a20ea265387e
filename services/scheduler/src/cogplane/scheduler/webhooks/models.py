"""Signing secrets and keys (schema ``scheduler``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from cogplane.common.db import utcnow
from cogplane.scheduler.models import Base


class WebhookSecretRow(Base):
    """An account's webhook signing secret, created the first time it is needed."""

    __tablename__ = "webhook_secrets"

    account_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SigningKeyRow(Base):
    """A platform key (standard base64), such as the one stream URL tokens are signed with."""

    __tablename__ = "signing_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
