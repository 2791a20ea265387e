"""Deployments: the registry's calls, the releases it announces, and what the scheduler reports.

A deployment is a private, fixed endpoint for one model: its own queue (the target
``deployment:{id}``) and dedicated instances between ``min_instances`` and ``max_instances``.
Each change of version, hardware or instance limits is a new numbered release; the registry
announces every release (and the deletion) as an event that the scheduler and the autoscaler
act on.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from cogplane.common.contracts.accounts import Account
from cogplane.common.contracts.base import Contract, Empty, Event, Rpc
from cogplane.common.contracts.models import MODEL_NAME_PATTERN, Viewer
from cogplane.common.contracts.predictions import VersionSpec

DEPLOYMENT_TARGET_PREFIX = "deployment:"


def deployment_target(deployment_id: str) -> str:
    """The scheduler's target (queue and instances) of a deployment."""
    return f"{DEPLOYMENT_TARGET_PREFIX}{deployment_id}"


class Configuration(Contract):
    """What a release runs on: the hardware SKU and the instance limits."""

    hardware: str = Field(max_length=64)
    min_instances: int = Field(ge=0)
    max_instances: int = Field(ge=0)


class Release(Contract):
    """One numbered release of a deployment (``current_release`` in Replicate's object)."""

    number: int = Field(ge=1)
    model: str = Field(description="owner/name of the model.")
    version: str
    created_at: datetime
    created_by: str = Field(description="Username of the account that made the release.")
    configuration: Configuration
    created_by_account: Account | None = Field(
        default=None, description="The account behind ``created_by`` (Replicate shows it whole)."
    )


class DeploymentInfo(Contract):
    """A deployment and its current release."""

    id: str
    owner: str
    name: str
    owner_account_id: str
    created_at: datetime
    current_release: Release

    @property
    def target(self) -> str:
        """The scheduler's target of this deployment."""
        return deployment_target(self.id)


class CreateDeployment(Contract):
    viewer: Viewer
    owner: str | None = Field(
        default=None, max_length=64, description="Owning account; the viewer's own by default."
    )
    name: str = Field(pattern=MODEL_NAME_PATTERN)
    model: str = Field(max_length=200, description="owner/name")
    version: str = Field(max_length=64)
    hardware: str = Field(max_length=64)
    min_instances: int
    max_instances: int


class UpdateDeployment(Contract):
    viewer: Viewer
    owner: str
    name: str
    version: str | None = Field(default=None, max_length=64)
    hardware: str | None = Field(default=None, max_length=64)
    min_instances: int | None = None
    max_instances: int | None = None


class DeploymentRef(Contract):
    viewer: Viewer
    owner: str
    name: str


class ListDeployments(Contract):
    viewer: Viewer
    cursor: str | None = Field(default=None, max_length=500)
    limit: int = Field(default=100, ge=1, le=100)


class DeploymentPage(Contract):
    results: list[DeploymentInfo]
    next_cursor: str | None = None


class ReleaseList(Contract):
    """A deployment's releases, newest first."""

    results: list[Release]


class ResolvedDeployment(Contract):
    """What a prediction on a deployment needs: the deployment and its release's version."""

    deployment: DeploymentInfo
    version: VersionSpec


CREATE_DEPLOYMENT = Rpc("registry.deployments.create", CreateDeployment, DeploymentInfo)
GET_DEPLOYMENT = Rpc("registry.deployments.get", DeploymentRef, DeploymentInfo)
LIST_DEPLOYMENTS = Rpc("registry.deployments.list", ListDeployments, DeploymentPage)
UPDATE_DEPLOYMENT = Rpc("registry.deployments.update", UpdateDeployment, DeploymentInfo)
DELETE_DEPLOYMENT = Rpc("registry.deployments.delete", DeploymentRef, Empty)
LIST_RELEASES = Rpc("registry.deployments.releases", DeploymentRef, ReleaseList)
RESOLVE_DEPLOYMENT = Rpc("registry.deployments.resolve", DeploymentRef, ResolvedDeployment)


class DeploymentReleased(Event):
    """A deployment was created or changed: its target should now run this release."""

    subject_suffix: ClassVar[str] = "deployments.released"
    type: Literal["deployment.released"] = "deployment.released"
    deployment_id: str
    owner: str
    name: str
    owner_account_id: str
    release: int = Field(ge=1)
    version: VersionSpec
    configuration: Configuration

    @property
    def target(self) -> str:
        """The scheduler's target of the deployment."""
        return deployment_target(self.deployment_id)


class DeploymentDeleted(Event):
    """A deployment is gone: its target stops its instances."""

    subject_suffix: ClassVar[str] = "deployments.deleted"
    type: Literal["deployment.deleted"] = "deployment.deleted"
    deployment_id: str

    @property
    def target(self) -> str:
        """The scheduler's target of the deployment."""
        return deployment_target(self.deployment_id)


class TargetRef(Contract):
    target: str = Field(max_length=100)


class TargetActivity(Contract):
    """Whether a target is in use: instances not yet stopped, and unfinished predictions."""

    instances_online: int = 0
    queued: int = 0
    inflight: int = 0


TARGET_ACTIVITY = Rpc("scheduler.targets.activity", TargetRef, TargetActivity)
