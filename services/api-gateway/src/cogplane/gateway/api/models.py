"""``/v1/models``, their versions, pushes (builds) and ``/v1/hardware``, in Replicate's shapes."""

from __future__ import annotations

import hashlib
import tempfile
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from cogplane.common.contracts import models as c
from cogplane.common.contracts.base import SOURCES_BUCKET
from cogplane.common.errors import BadRequest, Forbidden
from cogplane.common.hardware import CATALOG
from cogplane.common.predictions_json import iso
from cogplane.gateway.api.schemas import Body
from cogplane.gateway.deps import BusDep, CurrentViewer, PublicBase

router = APIRouter(prefix="/v1", tags=["models"])
PUSH_PATH = r"/v1/models/[^/]+/[^/]+/builds"
PUSH_TYPES = ("application/gzip", "application/x-gzip", "application/octet-stream")


class HardwareOut(BaseModel):
    sku: str
    name: str


class VersionOut(BaseModel):
    """Replicate's version object."""

    id: str
    created_at: str
    cog_version: str
    openapi_schema: dict[str, Any]


class ModelOut(BaseModel):
    """Replicate's model object."""

    url: str
    owner: str
    name: str
    description: str | None
    visibility: Literal["public", "private"]
    hardware: str
    github_url: str | None
    paper_url: str | None
    license_url: str | None
    cover_image_url: str | None
    run_count: int
    default_example: None = None
    latest_version: VersionOut | None
    created_at: str


class Page(BaseModel):
    next: str | None
    previous: str | None


class ModelPage(Page):
    results: list[ModelOut]


class VersionPage(Page):
    results: list[VersionOut]


class ModelCreate(Body):
    owner: str = Field(max_length=64, description="You, or an organization you belong to.")
    name: str = Field(
        pattern=c.MODEL_NAME_PATTERN,
        description="Lowercase letters, digits, dashes, underscores and dots; at most 100.",
    )
    visibility: Literal["public", "private"]
    hardware: str = Field(max_length=64, description="A SKU from GET /v1/hardware.")
    description: str | None = Field(default=None, max_length=5000)
    github_url: str | None = Field(default=None, max_length=500)
    paper_url: str | None = Field(default=None, max_length=500)
    license_url: str | None = Field(default=None, max_length=500)
    cover_image_url: str | None = Field(default=None, max_length=500)


class ModelPatch(Body):
    visibility: Literal["public", "private"] | None = None
    hardware: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=5000)
    github_url: str | None = Field(default=None, max_length=500)
    paper_url: str | None = Field(default=None, max_length=500)
    license_url: str | None = Field(default=None, max_length=500)
    cover_image_url: str | None = Field(default=None, max_length=500)


class BuildOut(BaseModel):
    """A build of a push: follow it until ``status`` is ready or failed."""

    id: str
    model: str
    status: c.BuildStatus
    created_at: str
    finished_at: str | None
    version: str | None
    error: str | None
    logs: str
    logs_offset: int = Field(description="Pass it back as ?logs_offset= to get only newer logs.")
    env_reused: bool | None
    duration_seconds: float | None
    urls: dict[str, str]


def version_out(version: c.VersionInfo) -> VersionOut:
    return VersionOut(
        id=version.id,
        created_at=iso(version.created_at),
        cog_version=version.cog_version,
        openapi_schema=version.openapi_schema,
    )


def model_out(model: c.ModelInfo, base: str) -> ModelOut:
    return ModelOut(
        url=f"{base}/{model.owner}/{model.name}",
        owner=model.owner,
        name=model.name,
        description=model.description,
        visibility=model.visibility,
        hardware=model.hardware,
        github_url=model.github_url,
        paper_url=model.paper_url,
        license_url=model.license_url,
        cover_image_url=model.cover_image_url,
        run_count=model.run_count,
        latest_version=version_out(model.latest_version) if model.latest_version else None,
        created_at=iso(model.created_at),
    )


def build_out(build: c.BuildInfo, base: str) -> BuildOut:
    return BuildOut(
        id=build.id,
        model=f"{build.owner}/{build.name}",
        status=build.status,
        created_at=iso(build.created_at),
        finished_at=iso(build.finished_at) if build.finished_at else None,
        version=build.version_id,
        error=build.error,
        logs=build.logs,
        logs_offset=build.logs_offset,
        env_reused=build.env_reused,
        duration_seconds=build.duration_seconds,
        urls={"get": f"{base}/v1/builds/{build.id}"},
    )


def page_url(request: Request, base: str, cursor: str | None) -> str | None:
    """The absolute URL of another page of the same listing."""
    if cursor is None:
        return None
    params = dict(request.query_params) | {"cursor": cursor}
    return f"{base}{request.url.path}?{urlencode(params)}"


Cursor = Annotated[str | None, Query(max_length=500, description="From a page's next URL.")]


@router.get("/hardware", response_model=list[HardwareOut])
async def list_hardware(_: CurrentViewer) -> list[HardwareOut]:
    """The hardware SKUs models and deployments can run on."""
    return [HardwareOut(sku=s.sku, name=s.name) for s in CATALOG]


@router.post("/models", response_model=ModelOut, status_code=status.HTTP_201_CREATED)
async def create_model(
    body: ModelCreate, viewer: CurrentViewer, bus: BusDep, base: PublicBase
) -> ModelOut:
    """Create a model under your account or one of your organizations."""
    model = await bus.request(c.CREATE_MODEL, c.CreateModel(viewer=viewer, **body.model_dump()))
    return model_out(model, base)


@router.get("/models", response_model=ModelPage)
async def list_models(
    request: Request,
    viewer: CurrentViewer,
    bus: BusDep,
    base: PublicBase,
    cursor: Cursor = None,
    sort_by: Literal["model_created_at", "latest_version_created_at"] = "model_created_at",
    sort_direction: Literal["asc", "desc"] = "desc",
) -> ModelPage:
    """Public models, and the private ones of you and your organizations."""
    query = c.ListModels(
        viewer=viewer, cursor=cursor, sort_by=sort_by, sort_direction=sort_direction
    )
    page = await bus.request(c.LIST_MODELS, query)
    return ModelPage(
        results=[model_out(m, base) for m in page.results],
        next=page_url(request, base, page.next_cursor),
        previous=page_url(request, base, page.previous_cursor),
    )


@router.get("/models/{owner}/{name}", response_model=ModelOut)
async def get_model(
    owner: str, name: str, viewer: CurrentViewer, bus: BusDep, base: PublicBase
) -> ModelOut:
    """A model and its latest version (404 for private models of others)."""
    model = await bus.request(c.GET_MODEL, c.ModelRef(viewer=viewer, owner=owner, name=name))
    return model_out(model, base)


@router.patch("/models/{owner}/{name}", response_model=ModelOut)
async def update_model(
    owner: str, name: str, body: ModelPatch, viewer: CurrentViewer, bus: BusDep, base: PublicBase
) -> ModelOut:
    """Change a model's description, links, visibility or hardware."""
    request = c.UpdateModel(
        viewer=viewer,
        owner=owner,
        name=name,
        fields_set=sorted(body.model_fields_set),
        **body.model_dump(),
    )
    return model_out(await bus.request(c.UPDATE_MODEL, request), base)


@router.delete("/models/{owner}/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_model(owner: str, name: str, viewer: CurrentViewer, bus: BusDep) -> Response:
    """Delete a private model that has no versions."""
    await bus.request(c.DELETE_MODEL, c.ModelRef(viewer=viewer, owner=owner, name=name))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/models/{owner}/{name}/versions", response_model=VersionPage)
async def list_versions(
    request: Request,
    owner: str,
    name: str,
    viewer: CurrentViewer,
    bus: BusDep,
    base: PublicBase,
    cursor: Cursor = None,
) -> VersionPage:
    """A model's versions, newest first."""
    query = c.ListVersions(viewer=viewer, owner=owner, name=name, cursor=cursor)
    page = await bus.request(c.LIST_VERSIONS, query)
    return VersionPage(
        results=[version_out(v) for v in page.results],
        next=page_url(request, base, page.next_cursor),
        previous=page_url(request, base, page.previous_cursor),
    )


@router.get("/models/{owner}/{name}/versions/{version_id}", response_model=VersionOut)
async def get_version(
    owner: str, name: str, version_id: str, viewer: CurrentViewer, bus: BusDep
) -> VersionOut:
    """One version, with its OpenAPI schema."""
    ref = c.VersionRef(viewer=viewer, owner=owner, name=name, version_id=version_id)
    return version_out(await bus.request(c.GET_VERSION, ref))


@router.delete("/models/{owner}/{name}/versions/{version_id}", status_code=status.HTTP_202_ACCEPTED)
async def delete_version(
    owner: str, name: str, version_id: str, viewer: CurrentViewer, bus: BusDep
) -> Response:
    """Delete a version of a private model you own (202, as Replicate answers)."""
    ref = c.VersionRef(viewer=viewer, owner=owner, name=name, version_id=version_id)
    await bus.request(c.DELETE_VERSION, ref)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/models/{owner}/{name}/builds",
    response_model=BuildOut,
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={
        "requestBody": {
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in PUSH_TYPES}
        }
    },
)
async def push(
    request: Request, owner: str, name: str, viewer: CurrentViewer, bus: BusDep, base: PublicBase
) -> BuildOut:
    """Push a Cog project (a gzip'd tar, as `cogplane push` makes it) and start building it."""
    model = await bus.request(c.GET_MODEL, c.ModelRef(viewer=viewer, owner=owner, name=name))
    if not viewer.can_act_as(model.owner):  # refuse before taking in a large upload
        raise Forbidden(f"You cannot push to {owner}/{name}: you are not its owner")
    digest = hashlib.sha256()
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
            spool.write(chunk)
        if size == 0:
            raise BadRequest("The request body is empty: send the project as a gzip'd tar")
        spool.seek(0)
        object_name = f"sha256-{digest.hexdigest()}"
        if not await bus.has_object(SOURCES_BUCKET, object_name):
            await bus.put_object(SOURCES_BUCKET, object_name, spool)  # type: ignore[arg-type]
    start = c.StartBuild(
        viewer=viewer, owner=owner, name=name, source_object=object_name, size=size
    )
    return build_out(await bus.request(c.START_BUILD, start), base)


@router.get("/builds/{build_id}", response_model=BuildOut)
async def get_build(
    build_id: str,
    viewer: CurrentViewer,
    bus: BusDep,
    base: PublicBase,
    logs_offset: Annotated[int, Query(ge=0, le=c.MAX_LOG_CHUNKS)] = 0,
) -> BuildOut:
    """A build's status and its logs from ``logs_offset`` on."""
    ref = c.BuildRef(viewer=viewer, build_id=build_id, logs_offset=logs_offset)
    return build_out(await bus.request(c.GET_BUILD, ref), base)
