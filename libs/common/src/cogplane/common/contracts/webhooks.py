"""Webhook signing secrets, the durable "completed" webhook, and stream access (scheduler)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from cogplane.common.contracts.base import Contract, Empty, Event, Rpc
from cogplane.common.contracts.models import Viewer
from cogplane.common.contracts.predictions import PredictionRecord


class WebhookSecretRequest(Contract):
    viewer: Viewer


class WebhookSecret(Contract):
    """An account's signing secret in Standard Webhooks' form: ``whsec_<standard base64>``."""

    key: str


class StreamKey(Contract):
    """The key stream URL tokens are signed with (standard base64)."""

    key: str


class StreamRef(Contract):
    """A prediction, named by its stream URL (the token stands in for the caller's identity)."""

    prediction_id: str = Field(max_length=64)
    token: str = Field(max_length=100)


class WebhookDue(Event):
    """A prediction finished and its ``completed`` webhook must be delivered (with retries).

    The id is derived from the prediction, so a repeated announcement is dropped by JetStream
    and every attempt carries the same ``webhook-id``.
    """

    subject_suffix: ClassVar[str] = "webhooks.due"
    type: Literal["webhook.due"] = "webhook.due"
    prediction_id: str

    @classmethod
    def of(cls, prediction_id: str) -> WebhookDue:
        """The due notice of ``prediction_id``'s completed webhook."""
        return cls(id=f"msg_{prediction_id}_completed", prediction_id=prediction_id)


GET_WEBHOOK_SECRET = Rpc("scheduler.webhooks.secret", WebhookSecretRequest, WebhookSecret)
GET_STREAM_KEY = Rpc("scheduler.streams.key", Empty, StreamKey)
GET_STREAMED_PREDICTION = Rpc("scheduler.streams.get", StreamRef, PredictionRecord)
