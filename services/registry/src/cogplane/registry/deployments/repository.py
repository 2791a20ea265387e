"""All SQL of deployments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from cogplane.registry.deployments.models import DeploymentRow, ReleaseRow
from cogplane.registry.models import AccountRow

# A deployment with its current release, and the release with the account that made it.
Current = tuple[DeploymentRow, ReleaseRow]


def _with_current() -> Select[tuple[DeploymentRow, ReleaseRow]]:
    return (
        select(DeploymentRow, ReleaseRow)
        .join(
            ReleaseRow,
            and_(
                ReleaseRow.deployment_id == DeploymentRow.id,
                ReleaseRow.number == DeploymentRow.release,
            ),
        )
        .options(joinedload(DeploymentRow.model), joinedload(ReleaseRow.created_by))
    )


class DeploymentRepository:
    """Deployments and their releases."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: DeploymentRow | ReleaseRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def account(self, username: str) -> AccountRow | None:
        query = select(AccountRow).where(AccountRow.username == username)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def account_by_id(self, account_id: str) -> AccountRow | None:
        return await self.session.get(AccountRow, account_id)

    async def current(self, owner: str, name: str, *, for_update: bool = False) -> Current | None:
        """A deployment and its current release (the deployment row locked when asked)."""
        query = _with_current().where(DeploymentRow.owner == owner, DeploymentRow.name == name)
        if for_update:
            query = query.with_for_update(of=DeploymentRow)
        row = (await self.session.execute(query)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def page(
        self, owners: list[str], after: tuple[datetime, str] | None, limit: int
    ) -> list[Current]:
        """Deployments of ``owners``, newest first, keyset-paginated."""
        query = _with_current().where(DeploymentRow.owner.in_(owners))
        if after is not None:
            query = query.where(tuple_(DeploymentRow.created_at, DeploymentRow.id) < after)
        query = query.order_by(DeploymentRow.created_at.desc(), DeploymentRow.id.desc())
        return [(d, r) for d, r in (await self.session.execute(query.limit(limit))).all()]

    async def releases(self, deployment_id: str) -> list[ReleaseRow]:
        """Every release of a deployment, newest first."""
        query = (
            select(ReleaseRow)
            .options(joinedload(ReleaseRow.created_by))
            .where(ReleaseRow.deployment_id == deployment_id)
            .order_by(ReleaseRow.number.desc())
        )
        return list((await self.session.execute(query)).scalars())

    async def delete(self, row: DeploymentRow) -> None:
        """Delete a deployment; its releases go with it."""
        await self.session.delete(row)
        await self.session.flush()
