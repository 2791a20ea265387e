"""``/v1/deployments``: fixed endpoints of a model with their own instances (Replicate's shapes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field, field_validator

from cogplane.common.contracts import deployments as d
from cogplane.common.contracts import predictions as p
from cogplane.common.contracts.accounts import Account
from cogplane.common.contracts.models import MODEL_NAME_PATTERN
from cogplane.common.predictions_json import iso
from cogplane.gateway.api import predictions
from cogplane.gateway.api.models import Cursor, page_url
from cogplane.gateway.api.predictions import (
    CancelAfterHeader,
    ModelPredictionCreate,
    PredictionOut,
    PreferHeader,
)
from cogplane.gateway.api.schemas import AccountOut, Body
from cogplane.gateway.api.streams import StreamKeyDep
from cogplane.gateway.deps import BusDep, CurrentViewer, PublicBase

router = APIRouter(prefix="/v1", tags=["deployments"])

Instances = Annotated[int, Field(strict=True)]
LIMITS = "Between 0 and 5 by default (the registry's `deployment_max_min` setting)."
MAX_LIMITS = "Between 1 and 20 by default (the registry's `deployment_max_max` setting)."


class DeploymentCreate(Body):
    name: str = Field(
        pattern=MODEL_NAME_PATTERN,
        description="The deployment's name: lowercase letters, digits, dashes, underscores, dots.",
    )
    model: str = Field(max_length=200, description="The model to deploy, as owner/name.")
    version: str = Field(max_length=64, description="The id of a ready version of the model.")
    hardware: str = Field(max_length=64, description="A SKU from GET /v1/hardware.")
    min_instances: Instances = Field(description=f"Instances kept running. {LIMITS}")
    max_instances: Instances = Field(description=f"Most instances to scale to. {MAX_LIMITS}")
    owner: str | None = Field(
        default=None,
        max_length=64,
        description="Cogplane's addition: an organization you belong to; you by default.",
    )


class DeploymentPatch(Body):
    version: str | None = Field(default=None, max_length=64, description="Another version.")
    hardware: str | None = Field(default=None, max_length=64, description="A hardware SKU.")
    min_instances: Instances | None = Field(default=None, description=LIMITS)
    max_instances: Instances | None = Field(default=None, description=MAX_LIMITS)

    @field_validator("version", "hardware", "min_instances", "max_instances")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Only values the caller sent are validated: null is refused, an absent field is kept.
        if value is None:
            raise ValueError("Must not be null; leave the field out to keep its value")
        return value


class ConfigurationOut(BaseModel):
    hardware: str
    min_instances: int
    max_instances: int


class ReleaseOut(BaseModel):
    """One numbered release of a deployment."""

    number: int
    model: str
    version: str
    created_at: str
    created_by: AccountOut
    configuration: ConfigurationOut


class DeploymentOut(BaseModel):
    """Replicate's deployment object."""

    owner: str
    name: str
    current_release: ReleaseOut


class DeploymentPage(BaseModel):
    next: str | None
    previous: str | None
    results: list[DeploymentOut]


class ReleasePage(BaseModel):
    next: str | None = None
    previous: str | None = None
    results: list[ReleaseOut]


def _creator(release: d.Release) -> AccountOut:
    account: Account | None = release.created_by_account
    if account is None:
        return AccountOut(type="user", username=release.created_by, name=release.created_by)
    return AccountOut(
        type=account.type,
        username=account.username,
        name=account.name,
        github_url=account.github_url,
    )


def release_out(release: d.Release) -> ReleaseOut:
    config = release.configuration
    return ReleaseOut(
        number=release.number,
        model=release.model,
        version=release.version,
        created_at=iso(release.created_at),
        created_by=_creator(release),
        configuration=ConfigurationOut(
            hardware=config.hardware,
            min_instances=config.min_instances,
            max_instances=config.max_instances,
        ),
    )


def deployment_out(info: d.DeploymentInfo) -> DeploymentOut:
    return DeploymentOut(
        owner=info.owner, name=info.name, current_release=release_out(info.current_release)
    )


def placement(info: d.DeploymentInfo) -> p.DeploymentPlacement:
    """Where a prediction on the deployment waits and runs."""
    config = info.current_release.configuration
    return p.DeploymentPlacement(
        deployment_id=info.id,
        deployment=f"{info.owner}/{info.name}",
        target=info.target,
        release=info.current_release.number,
        hardware=config.hardware,
        min_instances=config.min_instances,
        max_instances=config.max_instances,
    )


@router.post(
    "/deployments",
    response_model=DeploymentOut,
    status_code=status.HTTP_200_OK,
    summary="Create a deployment",
)
async def create_deployment(
    body: DeploymentCreate, viewer: CurrentViewer, bus: BusDep
) -> DeploymentOut:
    """A deployment of a ready version on the hardware and instance limits given: release 1.

    It is yours unless `owner` names an organization you belong to; `model` must be visible to
    you. Answers 200 with the deployment, as Replicate does.
    """
    request = d.CreateDeployment(viewer=viewer, **body.model_dump())
    return deployment_out(await bus.request(d.CREATE_DEPLOYMENT, request))


@router.get("/deployments", response_model=DeploymentPage, summary="List deployments")
async def list_deployments(
    request: Request, viewer: CurrentViewer, bus: BusDep, base: PublicBase, cursor: Cursor = None
) -> DeploymentPage:
    """Deployments of you and your organizations, newest first, with their current release."""
    page = await bus.request(d.LIST_DEPLOYMENTS, d.ListDeployments(viewer=viewer, cursor=cursor))
    return DeploymentPage(
        results=[deployment_out(info) for info in page.results],
        next=page_url(request, base, page.next_cursor),
        previous=None,
    )


@router.get("/deployments/{owner}/{name}", response_model=DeploymentOut, summary="Get a deployment")
async def get_deployment(
    owner: str, name: str, viewer: CurrentViewer, bus: BusDep
) -> DeploymentOut:
    """A deployment and its current release (404 unless it is yours or your organization's)."""
    ref = d.DeploymentRef(viewer=viewer, owner=owner, name=name)
    return deployment_out(await bus.request(d.GET_DEPLOYMENT, ref))


@router.patch(
    "/deployments/{owner}/{name}", response_model=DeploymentOut, summary="Update a deployment"
)
async def update_deployment(
    owner: str, name: str, body: DeploymentPatch, viewer: CurrentViewer, bus: BusDep
) -> DeploymentOut:
    """Change the version, hardware or instance limits: each update is a new release.

    The release `number` goes up by one with every accepted update, even one that changes
    nothing; instances of the new release replace the old ones without losing predictions.
    """
    request = d.UpdateDeployment(viewer=viewer, owner=owner, name=name, **body.model_dump())
    return deployment_out(await bus.request(d.UPDATE_DEPLOYMENT, request))


@router.delete(
    "/deployments/{owner}/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a deployment",
    responses={
        409: {"description": "Instances are online or predictions are queued or running"},
        503: {"description": "The scheduler did not say whether it is in use: nothing deleted"},
    },
)
async def delete_deployment(owner: str, name: str, viewer: CurrentViewer, bus: BusDep) -> Response:
    """Delete an idle deployment: 409 while it has instances online or predictions unfinished.

    Set `min_instances` to 0 and wait for its instances to stop first.
    """
    ref = d.DeploymentRef(viewer=viewer, owner=owner, name=name)
    await bus.request(d.DELETE_DEPLOYMENT, ref)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/deployments/{owner}/{name}/releases",
    response_model=ReleasePage,
    summary="List a deployment's releases",
)
async def list_releases(owner: str, name: str, viewer: CurrentViewer, bus: BusDep) -> ReleasePage:
    """Every release of a deployment, newest first (Cogplane's addition to Replicate's API)."""
    ref = d.DeploymentRef(viewer=viewer, owner=owner, name=name)
    releases = await bus.request(d.LIST_RELEASES, ref)
    return ReleasePage(results=[release_out(r) for r in releases.results])


@router.post(
    "/deployments/{owner}/{name}/predictions",
    response_model=PredictionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a prediction using a deployment",
    tags=["predictions"],
)
async def create_deployment_prediction(
    request: Request,
    response: Response,
    owner: str,
    name: str,
    body: ModelPredictionCreate,
    viewer: CurrentViewer,
    bus: BusDep,
    base: PublicBase,
    stream_key: StreamKeyDep,
    prefer: PreferHeader = None,
    cancel_after: CancelAfterHeader = None,
) -> PredictionOut:
    """Run the deployment's current release on its own instances.

    The same inputs, `Prefer: wait`, `Cancel-After`, webhooks and streams as
    `POST /v1/predictions`.
    """

    async def resolve() -> tuple[p.VersionSpec, p.DeploymentPlacement | None]:
        ref = d.DeploymentRef(viewer=viewer, owner=owner, name=name)
        resolved = await bus.request(d.RESOLVE_DEPLOYMENT, ref)
        return resolved.version, placement(resolved.deployment)

    return await predictions.create(
        request,
        response,
        f"{owner}/{name}",
        body,
        viewer,
        bus,
        base,
        prefer,
        cancel_after,
        stream_key,
        resolve=resolve,
    )
