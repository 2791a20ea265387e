"""The envelope every event shares, and the descriptor of a request-reply call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cogplane.common.db import utcnow

EVENTS_STREAM = "COGPLANE_EVENTS"
EVENTS_PREFIX = "cogplane.events"
DEAD_LETTER_STREAM = "COGPLANE_DEAD_LETTERS"
DEAD_LETTER_PREFIX = "cogplane.deadletter"
RPC_PREFIX = "cogplane.rpc"
BROADCAST_PREFIX = "cogplane.broadcast"
SOURCES_BUCKET = "cogplane-sources"
FILES_BUCKET = "cogplane-files"
OUTPUTS_BUCKET = "cogplane-outputs"
DELIVERY_PATH = "/deliveries"


def output_object_name(prediction_id: str, token: str, filename: str) -> str:
    """Where an output file is stored: unguessable (``token``), grouped by prediction."""
    return f"{prediction_id}/{token}/{filename}"


def new_id() -> str:
    """A fresh random identifier."""
    return uuid.uuid4().hex


def _nul_free(value: Any, path: str = "") -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{path or 'value'} must not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _nul_free(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _nul_free(item, f"{path}.{index}" if path else str(index))


class NulFree(BaseModel):
    """Refuses NUL characters in any string: PostgreSQL cannot store them in text columns."""

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any, info: ValidationInfo) -> Any:
        _nul_free(value, info.field_name or "")
        return value


class Contract(NulFree):
    """Base of every message body: readers ignore fields they do not know."""

    model_config = ConfigDict(extra="ignore")


class Event(Contract):
    """The envelope: a unique id (the dedupe key), a type and when it happened.

    Subclasses fix ``type`` with a ``Literal`` and set ``subject_suffix``; within a type only
    optional fields may be added, a breaking change is a new type.
    """

    subject_suffix: ClassVar[str]

    id: str = Field(default_factory=new_id)
    type: str
    occurred_at: datetime = Field(default_factory=utcnow)

    @property
    def subject(self) -> str:
        """The JetStream subject this event is published on."""
        return f"{EVENTS_PREFIX}.{self.subject_suffix}"


Req = TypeVar("Req", bound=Contract)
Resp = TypeVar("Resp", bound=Contract)


@dataclass(frozen=True)
class Rpc(Generic[Req, Resp]):
    """A request-reply call: its subject and the types of both sides."""

    name: str
    request: type[Req]
    response: type[Resp]

    @property
    def subject(self) -> str:
        """The NATS subject the callee listens on."""
        return f"{RPC_PREFIX}.{self.name}"


class Broadcast(Contract):
    """A best-effort notice to every interested process (core NATS, not stored).

    For cache invalidation and the like: receivers must stay correct if they miss one (for
    example by clearing their caches when their connection drops).
    """

    subject_suffix: ClassVar[str]

    @property
    def subject(self) -> str:
        """The core NATS subject of this notice."""
        return f"{BROADCAST_PREFIX}.{self.subject_suffix}"


class RpcReply(Contract):
    """What travels back on the reply subject: a result or a problem."""

    ok: bool
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class Empty(Contract):
    """A request or response without fields."""
