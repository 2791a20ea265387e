"""The union of every event type, parsed by its ``type`` discriminator."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter

from cogplane.common.contracts.deployments import DeploymentDeleted, DeploymentReleased
from cogplane.common.contracts.instances import InstanceLost, InstanceStateChanged
from cogplane.common.contracts.models import BuildFinished, BuildLogged, BuildRequested
from cogplane.common.contracts.predictions import PredictionFinished, PredictionUpdated
from cogplane.common.contracts.runners import RunnerHeartbeat, RunnerStopped
from cogplane.common.contracts.webhooks import WebhookDue

AnyEvent = Annotated[
    RunnerHeartbeat
    | RunnerStopped
    | BuildRequested
    | BuildLogged
    | BuildFinished
    | InstanceStateChanged
    | PredictionUpdated
    | WebhookDue
    | DeploymentReleased
    | DeploymentDeleted
    | InstanceLost
    | PredictionFinished,
    Field(discriminator="type"),
]

_adapter: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def parse_event(data: bytes) -> AnyEvent:
    """Parse an event of any known type (raises ``pydantic.ValidationError`` otherwise)."""
    return _adapter.validate_json(data)
