"""Catalog logic: who may see and change which model, versions, and the life of a build."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from cogplane.common.contracts import models as c
from cogplane.common.db import utcnow
from cogplane.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from cogplane.common.hardware import get_sku
from cogplane.common.pagination import decode_cursor, encode_cursor
from cogplane.registry.catalog.models import BuildRow, ModelRow, VersionRow
from cogplane.registry.catalog.repository import CatalogRepository

MODEL_FIELDS = ("description", "github_url", "paper_url", "license_url", "cover_image_url")


def to_version(row: VersionRow) -> c.VersionInfo:
    """The contract view of a version (its model must be loaded)."""
    return c.VersionInfo(
        id=row.id,
        owner=row.model.owner,
        name=row.model.name,
        created_at=row.created_at,
        cog_version=row.cog_version,
        openapi_schema=row.openapi_schema,
        python_version=row.python_version,
        predict=row.predict,
        train=row.train,
        concurrency_max=row.concurrency_max,
        gpu=row.gpu,
        env_key=row.env_key,
        source_object=row.source_object,
        source_digest=row.source_digest,
    )


def _not_permitted() -> InvalidInput:
    """Replicate's answer for a version that is missing or not yours to run."""
    error = InvalidInput([], title="Invalid version or not permitted")
    error.detail = (
        "The specified version does not exist (or perhaps you don't have permission to use it?)"
    )
    error.extra = {}
    return error


def check_hardware(sku: str) -> None:
    """422 unless ``sku`` is in the hardware catalog."""
    if get_sku(sku) is None:
        invalid = {
            "type": "enum",
            "field": "hardware",
            "description": f"Unknown hardware {sku!r}; see GET /v1/hardware",
        }
        raise InvalidInput([invalid])


def _refuse_if_deployed(deployments: list[str]) -> None:
    """409 while deployments run it (Replicate's rule for deleting versions)."""
    if deployments:
        raise Conflict(
            f"Used by deployment {', '.join(deployments)}: change or delete the deployment first"
        )


class CatalogService:
    """Catalog operations inside one unit of work."""

    def __init__(self, repo: CatalogRepository) -> None:
        self.repo = repo

    # -- models --------------------------------------------------------------------------------

    async def model_info(self, row: ModelRow) -> c.ModelInfo:
        """A model with its latest version."""
        latest = None
        if row.latest_version_id is not None:
            version = await self.repo.version(row.latest_version_id)
            latest = to_version(version) if version is not None else None
        return c.ModelInfo(
            owner=row.owner,
            name=row.name,
            visibility=row.visibility,
            hardware=row.hardware,
            run_count=row.run_count,
            created_at=row.created_at,
            latest_version=latest,
            **{f: getattr(row, f) for f in MODEL_FIELDS},
        )

    async def visible_model(self, viewer: c.Viewer, owner: str, name: str) -> ModelRow:
        """The model if the viewer may see it; 404 alike for missing and private ones."""
        row = await self.repo.model(owner, name)
        if row is None or (row.visibility == "private" and not viewer.can_act_as(owner)):
            raise NotFound(f"Model {owner}/{name} not found")
        return row

    async def managed_model(self, viewer: c.Viewer, owner: str, name: str) -> ModelRow:
        """The model if the viewer may change it."""
        row = await self.visible_model(viewer, owner, name)
        if not viewer.can_act_as(owner):
            raise Forbidden(f"You cannot change {owner}/{name}: you are not its owner")
        return row

    async def create_model(self, req: c.CreateModel) -> ModelRow:
        """A new model under the viewer or one of their organizations."""
        if not req.viewer.can_act_as(req.owner):
            raise Forbidden(
                f"You can only create models under your own account or an organization you "
                f"belong to, not {req.owner!r}"
            )
        check_hardware(req.hardware)
        if await self.repo.model(req.owner, req.name) is not None:
            raise Conflict(f"A model named {req.owner}/{req.name} already exists")
        row = ModelRow(
            owner=req.owner,
            name=req.name,
            visibility=req.visibility,
            hardware=req.hardware,
            created_at=utcnow(),
            **{f: getattr(req, f) for f in MODEL_FIELDS},
        )
        try:
            await self.repo.add(row)
        except IntegrityError as exc:  # a concurrent create of the same name won the race
            raise Conflict(f"A model named {req.owner}/{req.name} already exists") from exc
        return row

    async def update_model(self, req: c.UpdateModel) -> ModelRow:
        """Change the fields the caller sent."""
        row = await self.managed_model(req.viewer, req.owner, req.name)
        for required in ("hardware", "visibility"):
            if required in req.fields_set and getattr(req, required) is None:
                invalid = {
                    "type": "null",
                    "field": required,
                    "description": f"{required} cannot be null",
                }
                raise InvalidInput([invalid])
        if "hardware" in req.fields_set and req.hardware is not None:
            check_hardware(req.hardware)
            row.hardware = req.hardware
        if "visibility" in req.fields_set and req.visibility is not None:
            row.visibility = req.visibility
        for name in MODEL_FIELDS:
            if name in req.fields_set:
                setattr(row, name, getattr(req, name))
        return row

    async def delete_model(self, viewer: c.Viewer, owner: str, name: str) -> None:
        """Delete a private model without versions (Replicate's rule)."""
        row = await self.managed_model(viewer, owner, name)
        if row.visibility != "private":
            raise Conflict(f"{owner}/{name} is public: only private models can be deleted")
        _refuse_if_deployed(await self.repo.deployments_using(model_id=row.id))
        if await self.repo.count_versions(row.id):
            raise Conflict(f"{owner}/{name} has versions: delete them before the model")
        await self.repo.delete_model(row)

    async def list_models(self, req: c.ListModels) -> c.ModelPage:
        """Models the viewer can see, newest first by default."""
        owners = [req.viewer.username, *req.viewer.organizations]
        by_latest = req.sort_by == "latest_version_created_at"
        rows = await self.repo.models_page(
            owners,
            decode_cursor(req.cursor),
            req.limit + 1,
            by_latest_version=by_latest,
            descending=req.sort_direction == "desc",
        )
        page, more = rows[: req.limit], len(rows) > req.limit
        next_cursor = None
        if more:
            last = page[-1]
            at = last.latest_version_at if by_latest else last.created_at
            assert at is not None
            next_cursor = encode_cursor(at, last.id)
        return c.ModelPage(
            results=[await self.model_info(r) for r in page], next_cursor=next_cursor
        )

    # -- versions ------------------------------------------------------------------------------

    async def list_versions(self, req: c.ListVersions) -> c.VersionPage:
        """A model's versions, newest first."""
        model = await self.visible_model(req.viewer, req.owner, req.name)
        rows = await self.repo.versions_page(model.id, decode_cursor(req.cursor), req.limit + 1)
        page, more = rows[: req.limit], len(rows) > req.limit
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more else None
        return c.VersionPage(results=[to_version(r) for r in page], next_cursor=next_cursor)

    async def version(self, req: c.VersionRef) -> VersionRow:
        """A version of a model the viewer can see."""
        model = await self.visible_model(req.viewer, req.owner, req.name)
        row = await self.repo.version(req.version_id)
        if row is None or row.model_id != model.id:
            raise NotFound(f"Version {req.version_id} of {req.owner}/{req.name} not found")
        return row

    async def resolve(self, viewer: c.Viewer, ref: str) -> c.ResolvedVersion:
        """The version a prediction asks for, if the viewer may run it."""
        owner_name, _, version_id = ref.partition(":")
        if "/" not in owner_name:  # a bare version id
            row = await self.repo.version(owner_name)
            if row is None or (
                row.model.visibility == "private" and not viewer.can_act_as(row.model.owner)
            ):
                raise _not_permitted()
        else:
            owner, _, name = owner_name.partition("/")
            try:
                model = await self.visible_model(viewer, owner, name)
            except NotFound as exc:
                raise _not_permitted() from exc
            found = await self.repo.version(version_id or model.latest_version_id or "")
            if found is None or found.model_id != model.id:
                raise _not_permitted()
            row = found
        return c.ResolvedVersion(
            version=to_version(row), visibility=row.model.visibility, hardware=row.model.hardware
        )

    async def delete_version(self, req: c.VersionRef) -> None:
        """Delete a version of a private model the viewer owns (Replicate's rules)."""
        row = await self.version(req)
        model = await self.managed_model(req.viewer, req.owner, req.name)
        if model.visibility != "private":
            raise Conflict("Only versions of private models can be deleted")
        _refuse_if_deployed(await self.repo.deployments_using(version_id=row.id))
        try:
            await self.repo.delete_version(row)
        except IntegrityError as exc:  # a deployment moved to it meanwhile
            raise Conflict(f"Version {row.id} is used by a deployment") from exc
        if model.latest_version_id == row.id:
            newest = await self.repo.newest_version(model.id)
            model.latest_version_id = newest.id if newest else None
            model.latest_version_at = newest.created_at if newest else None

    # -- builds --------------------------------------------------------------------------------

    async def start_build(self, req: c.StartBuild) -> BuildRow:
        """Record a build of an uploaded archive (the caller then asks a runner)."""
        model = await self.managed_model(req.viewer, req.owner, req.name)
        row = BuildRow(
            model_id=model.id,
            status="building",
            source_object=req.source_object,
            created_by=req.viewer.account_id,
            created_at=utcnow(),
        )
        await self.repo.add(row)
        row.model = model
        return row

    async def build_info(self, viewer: c.Viewer, build_id: str, logs_offset: int) -> c.BuildInfo:
        """A build with its logs from ``logs_offset`` (chunks) on."""
        row = await self.repo.build(build_id)
        if row is None or not viewer.can_act_as(row.model.owner):
            raise NotFound(f"Build {build_id} not found")
        chunks: list[str] = []
        for chunk in await self.repo.logs(row.id, logs_offset):
            if chunk.seq != logs_offset + len(chunks):
                break  # a chunk still in flight: stop at the gap, the caller asks again
            chunks.append(chunk.text)
        return c.BuildInfo(
            id=row.id,
            owner=row.model.owner,
            name=row.model.name,
            status=row.status,
            created_at=row.created_at,
            finished_at=row.finished_at,
            logs="".join(chunks),
            logs_offset=logs_offset + len(chunks),
            error=row.error,
            version_id=row.version_id,
            env_reused=row.env_reused,
            duration_seconds=row.duration_seconds,
        )

    async def record_log(self, event: c.BuildLogged) -> None:
        """Keep a chunk of build output (idempotent); output of unknown builds is dropped."""
        if await self.repo.build(event.build_id) is not None:
            await self.repo.add_log(event.build_id, event.seq, event.text)

    async def finish_build(self, event: c.BuildFinished) -> None:
        """Make the version (if new) and end the build; a repeated event changes nothing."""
        build = await self.repo.build(event.build_id, for_update=True)
        if build is None or build.status != "building":
            return
        build.finished_at = utcnow()
        build.env_reused = event.env_reused
        build.duration_seconds = event.duration_seconds
        if event.version is None:
            build.status, build.error = "failed", event.error or "The build failed"
            return
        version = await self.repo.version(event.version.id)
        if version is None:
            version = VersionRow(
                model_id=build.model_id,
                created_at=utcnow(),
                source_object=build.source_object,
                **event.version.model_dump(),
            )
            await self.repo.add(version)
            build.model.latest_version_id = version.id
            build.model.latest_version_at = version.created_at
        build.status, build.version_id = "ready", version.id
