"""All SQL of uploaded files."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from cogplane.registry.files.models import FileRow


class FileRepository:
    """Uploaded files' rows."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: FileRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def get(self, file_id: str, *, for_update: bool = False) -> FileRow | None:
        query = select(FileRow).where(FileRow.id == file_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def page(
        self, owner_id: str, now: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[FileRow]:
        """An owner's unexpired files, newest first."""
        query = select(FileRow).where(FileRow.owner_id == owner_id, FileRow.expires_at > now)
        if after is not None:
            query = query.where(tuple_(FileRow.created_at, FileRow.id) < after)
        query = query.order_by(FileRow.created_at.desc(), FileRow.id.desc()).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def expired(self, now: datetime, limit: int) -> list[FileRow]:
        """Expired files, locked; rows another replica is sweeping are skipped."""
        query = (
            select(FileRow)
            .where(FileRow.expires_at <= now)
            .order_by(FileRow.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(query)).scalars())

    async def delete(self, row: FileRow) -> None:
        await self.session.delete(row)
        await self.session.flush()
