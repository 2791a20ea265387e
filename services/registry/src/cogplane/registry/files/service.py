"""File logic: who may see which file, how long it is kept, and removing it with its bytes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from cogplane.common.contracts import files as c
from cogplane.common.contracts.models import Viewer
from cogplane.common.db import utcnow
from cogplane.common.errors import Conflict, NotFound
from cogplane.common.pagination import decode_cursor, encode_cursor
from cogplane.registry.files.models import FileRow
from cogplane.registry.files.repository import FileRepository
from cogplane.registry.files.store import FileStore

FILE_LIFETIME = timedelta(hours=24)
NOT_FOUND = "File not found"


def to_file(row: FileRow) -> c.FileInfo:
    """The contract view of a file."""
    return c.FileInfo(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        md5=row.md5,
        metadata=row.file_metadata,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


class FileService:
    """File operations inside one unit of work."""

    def __init__(self, repo: FileRepository, store: FileStore) -> None:
        self.repo = repo
        self.store = store

    async def create(self, req: c.CreateFile) -> FileRow:
        """Record a file the viewer uploaded; it expires after ``FILE_LIFETIME``."""
        now = utcnow()
        row = FileRow(
            id=req.id,
            owner_id=req.viewer.account_id,
            name=req.name,
            content_type=req.content_type,
            size=req.size,
            sha256=req.sha256,
            md5=req.md5,
            file_metadata=req.metadata,
            created_at=now,
            expires_at=now + FILE_LIFETIME,
        )
        try:
            await self.repo.add(row)
        except IntegrityError as exc:
            raise Conflict(f"A file with id {req.id} already exists") from exc
        return row

    async def owned(self, owner_id: str, file_id: str, *, for_update: bool = False) -> FileRow:
        """The file if ``owner_id`` owns it and it has not expired; 404 alike otherwise."""
        row = await self.repo.get(file_id, for_update=for_update)
        if row is None or row.owner_id != owner_id or row.expires_at <= utcnow():
            raise NotFound(NOT_FOUND)
        return row

    async def get(self, viewer: Viewer, file_id: str) -> FileRow:
        """One of the viewer's files."""
        return await self.owned(viewer.account_id, file_id)

    async def page(self, req: c.ListFiles) -> c.FilePage:
        """The viewer's files, newest first."""
        rows = await self.repo.page(
            req.viewer.account_id, utcnow(), decode_cursor(req.cursor), req.limit + 1
        )
        page, more = rows[: req.limit], len(rows) > req.limit
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more else None
        return c.FilePage(results=[to_file(r) for r in page], next_cursor=next_cursor)

    async def delete(self, viewer: Viewer, file_id: str) -> None:
        """Delete one of the viewer's files and its bytes.

        The bytes go before the commit: if removing them fails the row stays and the caller can
        try again; a row whose bytes are gone is at worst a download that answers 404.
        """
        row = await self.owned(viewer.account_id, file_id, for_update=True)
        await self.repo.delete(row)
        await self.store.remove(row.id)

    async def sweep_expired(self, now: datetime, batch: int = 100) -> int:
        """Delete up to ``batch`` files past their expiry, bytes first; how many went."""
        rows = await self.repo.expired(now, batch)
        for row in rows:
            await self.store.remove(row.id)
            await self.repo.delete(row)
        return len(rows)
