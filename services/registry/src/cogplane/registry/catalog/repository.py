"""All SQL of the catalog."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from cogplane.registry.catalog.models import BuildLogRow, BuildRow, ModelRow, VersionRow
from cogplane.registry.deployments.models import DeploymentRow


class CatalogRepository:
    """Models, versions, builds and build logs."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: ModelRow | VersionRow | BuildRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def model(self, owner: str, name: str) -> ModelRow | None:
        query = select(ModelRow).where(ModelRow.owner == owner, ModelRow.name == name)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def models_page(
        self,
        visible_owners: list[str],
        after: tuple[datetime, str] | None,
        limit: int,
        *,
        by_latest_version: bool,
        descending: bool,
    ) -> list[ModelRow]:
        """Models visible to a viewer (public, or owned by them), keyset-paginated."""
        key = ModelRow.latest_version_at if by_latest_version else ModelRow.created_at
        query: Select[tuple[ModelRow]] = select(ModelRow).where(
            or_(ModelRow.visibility == "public", ModelRow.owner.in_(visible_owners))
        )
        if by_latest_version:
            query = query.where(ModelRow.latest_version_at.is_not(None))
        if after is not None:
            bound = tuple_(key, ModelRow.id)
            query = query.where(bound < after if descending else bound > after)
        order = (key.desc(), ModelRow.id.desc()) if descending else (key.asc(), ModelRow.id.asc())
        return list((await self.session.execute(query.order_by(*order).limit(limit))).scalars())

    async def version(self, version_id: str) -> VersionRow | None:
        query = (
            select(VersionRow)
            .options(joinedload(VersionRow.model))
            .where(VersionRow.id == version_id)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def versions_page(
        self, model_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[VersionRow]:
        """A model's versions, newest first."""
        query = (
            select(VersionRow)
            .options(joinedload(VersionRow.model))
            .where(VersionRow.model_id == model_id)
        )
        if after is not None:
            query = query.where(tuple_(VersionRow.created_at, VersionRow.id) < after)
        query = query.order_by(VersionRow.created_at.desc(), VersionRow.id.desc()).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def newest_version(self, model_id: str) -> VersionRow | None:
        query = (
            select(VersionRow)
            .where(VersionRow.model_id == model_id)
            .order_by(VersionRow.created_at.desc(), VersionRow.id.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def count_versions(self, model_id: str) -> int:
        query = select(func.count()).where(VersionRow.model_id == model_id)
        return int((await self.session.execute(query)).scalar_one())

    async def deployments_using(
        self, *, model_id: str | None = None, version_id: str | None = None
    ) -> list[str]:
        """owner/name of the deployments that run a model or a version now."""
        query = select(DeploymentRow.owner, DeploymentRow.name).order_by(DeploymentRow.created_at)
        if model_id is not None:
            query = query.where(DeploymentRow.model_id == model_id)
        if version_id is not None:
            query = query.where(DeploymentRow.version_id == version_id)
        return [f"{owner}/{name}" for owner, name in (await self.session.execute(query)).all()]

    async def delete_model(self, row: ModelRow) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def delete_version(self, row: VersionRow) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def build(self, build_id: str, *, for_update: bool = False) -> BuildRow | None:
        query = select(BuildRow).options(joinedload(BuildRow.model)).where(BuildRow.id == build_id)
        if for_update:
            query = query.with_for_update(of=BuildRow)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def add_log(self, build_id: str, seq: int, text: str) -> None:
        """Store a log chunk once, however often it is delivered."""
        statement = insert(BuildLogRow).values(build_id=build_id, seq=seq, text=text)
        await self.session.execute(statement.on_conflict_do_nothing())

    async def logs(self, build_id: str, from_seq: int) -> list[BuildLogRow]:
        query = (
            select(BuildLogRow)
            .where(and_(BuildLogRow.build_id == build_id, BuildLogRow.seq >= from_seq))
            .order_by(BuildLogRow.seq)
        )
        return list((await self.session.execute(query)).scalars())
