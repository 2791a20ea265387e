"""Models, versions and builds: the registry's calls and the build events runners act on."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from cogplane.common.contracts.base import Contract, Empty, Event, Rpc

MODEL_NAME_PATTERN = r"^[a-z0-9_](?:[a-z0-9._-]{0,98}[a-z0-9_.])?$"
MAX_LOG_CHUNKS = 1_000_000
Visibility = Literal["public", "private"]
BuildStatus = Literal["building", "ready", "failed"]


class Viewer(Contract):
    """Who asks, as the gateway verified it; the registry decides what they may see and do."""

    account_id: str
    username: str
    organizations: list[str] = Field(default_factory=list)
    is_admin: bool = False

    def can_act_as(self, owner: str) -> bool:
        """Whether the viewer may manage what ``owner`` owns (themselves or their organizations)."""
        return owner == self.username or owner in self.organizations


class VersionInfo(Contract):
    """An immutable, built version of a model."""

    id: str
    owner: str
    name: str
    created_at: datetime
    cog_version: str
    openapi_schema: dict[str, Any]
    python_version: str
    predict: str
    train: str | None = None
    concurrency_max: int | None = None
    gpu: bool = False
    env_key: str
    source_object: str
    source_digest: str


class ModelInfo(Contract):
    """A model and its newest ready version."""

    owner: str
    name: str
    visibility: Visibility
    hardware: str
    description: str | None = None
    github_url: str | None = None
    paper_url: str | None = None
    license_url: str | None = None
    cover_image_url: str | None = None
    run_count: int = 0
    created_at: datetime
    latest_version: VersionInfo | None = None


class ModelFields(Contract):
    """The editable fields of a model."""

    description: str | None = Field(default=None, max_length=5000)
    github_url: str | None = Field(default=None, max_length=500)
    paper_url: str | None = Field(default=None, max_length=500)
    license_url: str | None = Field(default=None, max_length=500)
    cover_image_url: str | None = Field(default=None, max_length=500)


class CreateModel(ModelFields):
    viewer: Viewer
    owner: str = Field(max_length=64)
    name: str = Field(pattern=MODEL_NAME_PATTERN)
    visibility: Visibility
    hardware: str = Field(max_length=64)


class UpdateModel(ModelFields):
    viewer: Viewer
    owner: str
    name: str
    visibility: Visibility | None = None
    hardware: str | None = Field(default=None, max_length=64)
    fields_set: list[str] = Field(description="Which fields the caller sent (null clears a field).")


class ModelRef(Contract):
    viewer: Viewer
    owner: str
    name: str


class PageRequest(Contract):
    viewer: Viewer
    cursor: str | None = Field(default=None, max_length=500)
    limit: int = Field(default=100, ge=1, le=100)


class ListModels(PageRequest):
    sort_by: Literal["model_created_at", "latest_version_created_at"] = "model_created_at"
    sort_direction: Literal["asc", "desc"] = "desc"


class ModelPage(Contract):
    results: list[ModelInfo]
    next_cursor: str | None = None
    previous_cursor: str | None = None


class ListVersions(PageRequest):
    owner: str
    name: str


class VersionPage(Contract):
    results: list[VersionInfo]
    next_cursor: str | None = None
    previous_cursor: str | None = None


class VersionRef(Contract):
    viewer: Viewer
    owner: str
    name: str
    version_id: str


class BuildInfo(Contract):
    """A build of pushed source into a version, with its logs."""

    id: str
    owner: str
    name: str
    status: BuildStatus
    created_at: datetime
    finished_at: datetime | None = None
    logs: str = ""
    logs_offset: int = Field(default=0, description="Where ``logs`` starts in the whole log.")
    error: str | None = None
    version_id: str | None = None
    env_reused: bool | None = None
    duration_seconds: float | None = None


class StartBuild(Contract):
    viewer: Viewer
    owner: str
    name: str
    source_object: str = Field(description="Name of the uploaded archive in the sources store.")
    size: int = Field(ge=0)


class BuildRef(Contract):
    viewer: Viewer
    build_id: str
    logs_offset: int = Field(default=0, ge=0, le=MAX_LOG_CHUNKS)


class ResolveVersion(Contract):
    """A version to run: a bare id, ``owner/name:id``, or ``owner/name`` (its latest version)."""

    viewer: Viewer
    ref: str = Field(max_length=300)


class ResolvedVersion(Contract):
    version: VersionInfo
    visibility: Visibility
    hardware: str


CREATE_MODEL = Rpc("registry.models.create", CreateModel, ModelInfo)
GET_MODEL = Rpc("registry.models.get", ModelRef, ModelInfo)
LIST_MODELS = Rpc("registry.models.list", ListModels, ModelPage)
UPDATE_MODEL = Rpc("registry.models.update", UpdateModel, ModelInfo)
DELETE_MODEL = Rpc("registry.models.delete", ModelRef, Empty)
LIST_VERSIONS = Rpc("registry.versions.list", ListVersions, VersionPage)
GET_VERSION = Rpc("registry.versions.get", VersionRef, VersionInfo)
DELETE_VERSION = Rpc("registry.versions.delete", VersionRef, Empty)
RESOLVE_VERSION = Rpc("registry.versions.resolve", ResolveVersion, ResolvedVersion)
START_BUILD = Rpc("registry.builds.start", StartBuild, BuildInfo)
GET_BUILD = Rpc("registry.builds.get", BuildRef, BuildInfo)


class BuildRequested(Event):
    """The registry asks some runner to build pushed source into a version."""

    subject_suffix: ClassVar[str] = "builds.requested"
    type: Literal["build.requested"] = "build.requested"
    build_id: str
    owner: str
    name: str
    source_object: str


class BuildLogged(Event):
    """Lines of build output, in order (``seq`` starts at 0 for each build)."""

    subject_suffix: ClassVar[str] = "builds.logged"
    type: Literal["build.logged"] = "build.logged"
    build_id: str
    seq: int = Field(ge=0, le=MAX_LOG_CHUNKS)
    text: str


class BuiltVersion(Contract):
    """What a successful build produced."""

    id: str
    cog_version: str
    openapi_schema: dict[str, Any]
    python_version: str
    predict: str
    train: str | None = None
    concurrency_max: int | None = None
    gpu: bool = False
    env_key: str
    source_digest: str


class BuildFinished(Event):
    """A build ended: a version, or an error with its reason."""

    subject_suffix: ClassVar[str] = "builds.finished"
    type: Literal["build.finished"] = "build.finished"
    build_id: str
    version: BuiltVersion | None = None
    error: str | None = None
    env_reused: bool = False
    duration_seconds: float = 0.0
    log_lines: int = Field(default=0, description="How many BuildLogged events came before.")
