"""Deployment logic: who may see and change which deployment, and what makes a valid release."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import IntegrityError

from cogplane.common.contracts import deployments as d
from cogplane.common.contracts.models import Viewer
from cogplane.common.contracts.predictions import VersionSpec
from cogplane.common.db import utcnow
from cogplane.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from cogplane.common.hardware import get_sku
from cogplane.common.pagination import decode_cursor, encode_cursor
from cogplane.registry.catalog.models import ModelRow, VersionRow
from cogplane.registry.catalog.repository import CatalogRepository
from cogplane.registry.catalog.service import CatalogService
from cogplane.registry.deployments.models import DeploymentRow, ReleaseRow
from cogplane.registry.deployments.repository import Current, DeploymentRepository
from cogplane.registry.service import to_account

Invalid = dict[str, str]
T = TypeVar("T")
CONFIG_FIELDS = ("version", "hardware", "min_instances", "max_instances")


@dataclass(frozen=True)
class Limits:
    """The instance limits a deployment may ask for (from the registry's settings)."""

    max_min_instances: int = 5
    max_max_instances: int = 20


def version_spec(version: VersionRow, model: ModelRow) -> VersionSpec:
    """What an instance needs to run ``version`` of ``model``."""
    return VersionSpec.of(
        version,
        owner=model.owner,
        name=model.name,
        visibility=model.visibility,
        hardware=model.hardware,
    )


def to_release(row: ReleaseRow, model: ModelRow) -> d.Release:
    """The contract view of a release (its creator must be loaded)."""
    return d.Release(
        number=row.number,
        model=f"{model.owner}/{model.name}",
        version=row.version_id,
        created_at=row.created_at,
        created_by=row.created_by.username,
        created_by_account=to_account(row.created_by),
        configuration=d.Configuration(
            hardware=row.hardware, min_instances=row.min_instances, max_instances=row.max_instances
        ),
    )


def to_info(current: Current) -> d.DeploymentInfo:
    """The contract view of a deployment at its current release."""
    row, release = current
    return d.DeploymentInfo(
        id=row.id,
        owner=row.owner,
        name=row.name,
        owner_account_id=row.owner_account_id,
        created_at=row.created_at,
        current_release=to_release(release, row.model),
    )


def _invalid(field: str, description: str, kind: str = "value_error") -> Invalid:
    return {"type": kind, "field": field, "description": description}


def check_limits(config: d.Configuration, limits: Limits, sent: set[str]) -> list[Invalid]:
    """What is wrong with the instance limits; ``sent`` says which fields the caller gave."""
    invalid = []
    low, high = config.min_instances, config.max_instances
    if not 0 <= low <= limits.max_min_instances:
        limit = limits.max_min_instances
        invalid.append(_invalid("min_instances", f"Must be between 0 and {limit}, not {low}"))
    if not 1 <= high <= limits.max_max_instances:
        limit = limits.max_max_instances
        invalid.append(_invalid("max_instances", f"Must be between 1 and {limit}, not {high}"))
    if not invalid and low > high:
        field = "min_instances" if "min_instances" in sent else "max_instances"
        invalid.append(
            _invalid(field, f"min_instances ({low}) must not exceed max_instances ({high})")
        )
    return invalid


def check_hardware(sku: str) -> list[Invalid]:
    """What is wrong with a hardware SKU (nothing when the catalog has it)."""
    if get_sku(sku) is not None:
        return []
    return [_invalid("hardware", f"Unknown hardware {sku!r}; see GET /v1/hardware", "enum")]


def refuse_if_busy(owner: str, name: str, activity: d.TargetActivity) -> None:
    """409 while a deployment has instances online or unfinished predictions."""
    busy = []
    if activity.instances_online:
        busy.append(f"{activity.instances_online} instance(s) online")
    if activity.queued:
        busy.append(f"{activity.queued} prediction(s) queued")
    if activity.inflight:
        busy.append(f"{activity.inflight} prediction(s) running")
    if busy:
        raise Conflict(
            f"Deployment {owner}/{name} is in use ({', '.join(busy)}). Set min_instances to 0 "
            "and delete it once its predictions have finished and its instances have stopped."
        )


class DeploymentService:
    """Deployment operations inside one unit of work."""

    def __init__(self, repo: DeploymentRepository, limits: Limits) -> None:
        self.repo = repo
        self.limits = limits
        self.catalog = CatalogService(CatalogRepository(repo.session))

    async def visible(
        self, viewer: Viewer, owner: str, name: str, *, lock: bool = False
    ) -> Current:
        """A deployment of the viewer or their organizations; 404 for everyone else."""
        found = None
        if viewer.can_act_as(owner):
            found = await self.repo.current(owner, name, for_update=lock)
        if found is None:
            raise NotFound(f"Deployment {owner}/{name} not found")
        return found

    async def _version(self, viewer: Viewer, model: ModelRow, version_id: str) -> VersionRow | None:
        """The ready version ``version_id`` of ``model``, if the viewer may run it."""
        version = await self.catalog.repo.version(version_id)
        visible = model.visibility == "public" or viewer.can_act_as(model.owner)
        if version is None or version.model_id != model.id or not visible:
            return None
        return version

    async def _release(
        self,
        viewer: Viewer,
        model: ModelRow,
        version_id: str,
        config: d.Configuration,
        sent: set[str],
    ) -> VersionRow:
        """Check a release's version and configuration: every problem in one 422."""
        version = await self._version(viewer, model, version_id)
        invalid: list[Invalid] = []
        if version is None:
            description = f"No ready version {version_id!r} of {model.owner}/{model.name}"
            invalid.append(_invalid("version", description, "not_found"))
        invalid += check_hardware(config.hardware) + check_limits(config, self.limits, sent)
        if invalid:
            raise InvalidInput(invalid)
        assert version is not None
        return version

    async def _model(self, viewer: Viewer, ref: str) -> ModelRow:
        owner, slash, name = ref.partition("/")
        if not slash or not owner or not name or "/" in name:
            raise InvalidInput([_invalid("model", f"Must be owner/name, not {ref!r}")])
        return await self.catalog.visible_model(viewer, owner, name)

    async def create(self, req: d.CreateDeployment) -> tuple[Current, d.DeploymentReleased]:
        """A new deployment at release 1, and the event that announces it."""
        owner = req.owner or req.viewer.username
        if not req.viewer.can_act_as(owner):
            raise Forbidden(
                f"You can only create deployments under your own account or an organization you "
                f"belong to, not {owner!r}"
            )
        account = await self.repo.account(owner)
        if account is None:  # an organization deleted since the caller's token was verified
            raise NotFound(f"Account {owner!r} not found")
        model = await self._model(req.viewer, req.model)
        # Built unchecked: _release checks it, reporting every problem in one 422.
        config = d.Configuration.model_construct(
            hardware=req.hardware, min_instances=req.min_instances, max_instances=req.max_instances
        )
        version = await self._release(req.viewer, model, req.version, config, set(CONFIG_FIELDS))
        if await self.repo.current(owner, req.name) is not None:
            raise Conflict(f"A deployment named {owner}/{req.name} already exists")
        row = DeploymentRow(
            owner=owner,
            owner_account_id=account.id,
            name=req.name,
            created_at=utcnow(),
            release=1,
            model_id=model.id,
            version_id=version.id,
        )
        try:
            await self.repo.add(row)
        except IntegrityError as exc:  # a concurrent create of the same name won the race
            raise Conflict(f"A deployment named {owner}/{req.name} already exists") from exc
        row.model = model
        release = await self._add_release(row, req.viewer, version.id, config)
        return (row, release), self._released(row, release, version, model)

    async def update(self, req: d.UpdateDeployment) -> tuple[Current, d.DeploymentReleased]:
        """A new release with the fields the caller gave; every accepted update is numbered."""
        sent = {f for f in CONFIG_FIELDS if getattr(req, f) is not None}
        if not sent:
            fields = ", ".join(CONFIG_FIELDS)
            raise InvalidInput([_invalid("body", f"Give at least one of {fields}", "missing")])
        row, current = await self.visible(req.viewer, req.owner, req.name, lock=True)
        config = d.Configuration.model_construct(
            hardware=_given(req.hardware, current.hardware),
            min_instances=_given(req.min_instances, current.min_instances),
            max_instances=_given(req.max_instances, current.max_instances),
        )
        version_id = _given(req.version, current.version_id)
        version = await self._release(req.viewer, row.model, version_id, config, sent)
        row.release += 1
        row.version_id = version.id
        release = await self._add_release(row, req.viewer, version.id, config)
        return (row, release), self._released(row, release, version, row.model)

    async def _add_release(
        self, row: DeploymentRow, viewer: Viewer, version_id: str, config: d.Configuration
    ) -> ReleaseRow:
        creator = await self.repo.account_by_id(viewer.account_id)
        if creator is None:
            raise NotFound(f"Account {viewer.username!r} not found")
        release = ReleaseRow(
            deployment_id=row.id,
            number=row.release,
            version_id=version_id,
            created_at=utcnow(),
            created_by_id=creator.id,
            **config.model_dump(),
        )
        await self.repo.add(release)
        release.created_by = creator
        return release

    @staticmethod
    def _released(
        row: DeploymentRow, release: ReleaseRow, version: VersionRow, model: ModelRow
    ) -> d.DeploymentReleased:
        return d.DeploymentReleased(
            deployment_id=row.id,
            owner=row.owner,
            name=row.name,
            owner_account_id=row.owner_account_id,
            release=release.number,
            version=version_spec(version, model),
            configuration=to_release(release, model).configuration,
        )

    async def list_deployments(self, req: d.ListDeployments) -> d.DeploymentPage:
        """The deployments of the viewer and their organizations, newest first."""
        owners = [req.viewer.username, *req.viewer.organizations]
        rows = await self.repo.page(owners, decode_cursor(req.cursor), req.limit + 1)
        page, more = rows[: req.limit], len(rows) > req.limit
        next_cursor = encode_cursor(page[-1][0].created_at, page[-1][0].id) if more else None
        return d.DeploymentPage(results=[to_info(c) for c in page], next_cursor=next_cursor)

    async def releases(self, req: d.DeploymentRef) -> d.ReleaseList:
        """A deployment's releases, newest first."""
        row, _ = await self.visible(req.viewer, req.owner, req.name)
        rows = await self.repo.releases(row.id)
        return d.ReleaseList(results=[to_release(r, row.model) for r in rows])

    async def resolve(self, req: d.DeploymentRef) -> d.ResolvedDeployment:
        """A deployment and the version of its current release, for a prediction on it."""
        current = await self.visible(req.viewer, req.owner, req.name)
        row, release = current
        version = await self.catalog.repo.version(release.version_id)
        if version is None:  # the foreign key keeps the current version; this is a bug
            raise NotFound(f"The version of deployment {req.owner}/{req.name} is gone")
        return d.ResolvedDeployment(
            deployment=to_info(current), version=version_spec(version, row.model)
        )

    async def delete(self, viewer: Viewer, owner: str, name: str, deployment_id: str) -> None:
        """Delete the deployment (if it is still the one the scheduler was asked about)."""
        row, _ = await self.visible(viewer, owner, name, lock=True)
        if row.id != deployment_id:
            raise Conflict(f"Deployment {owner}/{name} was replaced meanwhile; try again")
        await self.repo.delete(row)


def _given(value: T | None, current: T) -> T:
    """What a PATCH leaves: the value it gave, else the current one."""
    return current if value is None else value
