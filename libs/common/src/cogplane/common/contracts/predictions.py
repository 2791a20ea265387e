"""Predictions: admission and queries (scheduler), and the updates runners report."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from cogplane.common.contracts.base import Broadcast, Contract, Event, Rpc
from cogplane.common.contracts.models import Viewer

PredictionStatus = Literal["starting", "processing", "succeeded", "failed", "canceled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})
WebhookEvent = Literal["start", "output", "logs", "completed"]
Source = Literal["api", "web"]


# What an instance needs of a version to run it, named alike on every view of a version.
RUN_FIELDS = (
    "predict",
    "train",
    "concurrency_max",
    "gpu",
    "env_key",
    "python_version",
    "cog_version",
    "source_object",
    "source_digest",
    "openapi_schema",
)


class VersionSpec(Contract):
    """What an instance needs to run a version (copied from the registry at admission)."""

    version_id: str
    owner: str
    name: str
    visibility: Literal["public", "private"] = "public"
    hardware: str = "cpu"
    predict: str
    train: str | None = None
    concurrency_max: int | None = None
    gpu: bool = False
    env_key: str
    python_version: str
    cog_version: str
    source_object: str
    source_digest: str
    openapi_schema: dict[str, Any]

    @classmethod
    def of(
        cls, version: Any, *, owner: str, name: str, visibility: str, hardware: str
    ) -> VersionSpec:
        """The spec of a built version (a registry row or a ``VersionInfo``: same attributes)."""
        return cls.model_validate(
            {
                "version_id": version.id,
                "owner": owner,
                "name": name,
                "visibility": visibility,
                "hardware": hardware,
                **{field: getattr(version, field) for field in RUN_FIELDS},
            }
        )

    @property
    def target(self) -> str:
        """The queue a prediction of this version waits in: the version's shared pool."""
        return f"version:{self.version_id}"

    @property
    def slots(self) -> int:
        """How many predictions one instance runs at once."""
        return max(1, self.concurrency_max or 1)


class PredictionRecord(Contract):
    """A prediction as the scheduler keeps it."""

    id: str
    owner_account_id: str
    owner: str = Field(description="Username of the account the prediction belongs to.")
    model: str
    version: str
    target: str
    input: dict[str, Any]
    output: Any = None
    logs: str = ""
    error: str | None = None
    status: PredictionStatus
    source: Source = "api"
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    webhook: str | None = None
    webhook_events_filter: list[WebhookEvent] = Field(default_factory=list)
    deadline: datetime | None = None
    instance_id: str | None = None
    streaming: bool = False
    data_removed: bool = False
    deployment: str | None = Field(
        default=None, description="owner/name of the deployment it ran on, if any."
    )
    timings: dict[str, float] = Field(
        default_factory=dict, description="Per-hop timings in milliseconds."
    )


class DeploymentPlacement(Contract):
    """Where a deployment's prediction waits and runs: its target, at its current release."""

    deployment_id: str
    deployment: str = Field(description="owner/name of the deployment.")
    target: str
    release: int = Field(ge=1)
    hardware: str
    min_instances: int = Field(ge=0)
    max_instances: int = Field(ge=0)


class SubmitPrediction(Contract):
    viewer: Viewer
    version: VersionSpec
    input: dict[str, Any]
    webhook: str | None = None
    webhook_events_filter: list[WebhookEvent] = Field(default_factory=list)
    source: Source = "api"
    cancel_after_seconds: float | None = Field(default=None, gt=0)
    streaming: bool = False
    deployment: DeploymentPlacement | None = Field(
        default=None, description="The deployment to queue on; the version's shared pool if none."
    )


class PredictionRef(Contract):
    viewer: Viewer
    prediction_id: str = Field(max_length=64)


class ListPredictions(Contract):
    viewer: Viewer
    cursor: str | None = Field(default=None, max_length=500)
    limit: int = Field(default=100, ge=1, le=100)
    created_after: datetime | None = None
    created_before: datetime | None = None
    source: Source | None = None


class PredictionPage(Contract):
    results: list[PredictionRecord]
    next_cursor: str | None = None


SUBMIT_PREDICTION = Rpc("scheduler.predictions.submit", SubmitPrediction, PredictionRecord)
GET_PREDICTION = Rpc("scheduler.predictions.get", PredictionRef, PredictionRecord)
LIST_PREDICTIONS = Rpc("scheduler.predictions.list", ListPredictions, PredictionPage)
CANCEL_PREDICTION = Rpc("scheduler.predictions.cancel", PredictionRef, PredictionRecord)


class PredictionChanged(Broadcast):
    """The scheduler recorded a change of a prediction (for waiters, streams and webhooks)."""

    subject_suffix: ClassVar[str] = "predictions.changed"
    record: PredictionRecord


# -- between the scheduler and runners ---------------------------------------------------------


class RunPrediction(Contract):
    """Run a prediction on an instance (the runner answers once Cog has accepted it)."""

    instance_id: str
    prediction_id: str
    input: dict[str, Any]
    deadline: datetime | None = None


class CancelOnInstance(Contract):
    instance_id: str
    prediction_id: str


class Accepted(Contract):
    accepted: bool = True


class PredictionUpdated(Event):
    """What Cog reported about a prediction running on an instance.

    ``output`` follows Cog: while running, the list of outputs so far; at the end, the final
    shape. ``seq`` orders updates of one prediction (a runner counts them per attempt).
    """

    subject_suffix: ClassVar[str] = "predictions.updated"
    type: Literal["prediction.updated"] = "prediction.updated"
    prediction_id: str
    instance_id: str
    seq: int = Field(ge=0)
    status: PredictionStatus
    output: Any = None
    logs: str = ""
    error: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    files: list[str] = Field(
        default_factory=list,
        description="Output files stored so far (names in the outputs object store).",
    )


class PredictionFinished(Event):
    """A prediction reached its terminal state (the scheduler's record, for billing).

    The event id is derived from the prediction id, so announcing it twice is one event.
    """

    subject_suffix: ClassVar[str] = "predictions.finished"
    type: Literal["prediction.finished"] = "prediction.finished"
    prediction_id: str
    owner: str = Field(description="Username of the account the prediction belongs to.")
    owner_account_id: str
    model: str
    version: str
    target: str
    deployment: str | None = None
    instance_id: str | None = None
    status: PredictionStatus
    source: Source = "api"
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    predict_time: float | None = Field(default=None, description="Seconds Cog reported.")
