"""Reading a stored file chunk by chunk, so a download never holds the whole file in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from nats.js.errors import ObjectNotFoundError
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, OBJ_STREAM_TEMPLATE

from cogplane.common.bus import Bus
from cogplane.common.contracts.base import FILES_BUCKET
from cogplane.common.errors import NotFound


@dataclass(frozen=True)
class StoredObject:
    """An object of the files store, ready to be read."""

    bus: Bus
    bucket: str
    nuid: str
    size: int
    chunks: int

    async def read(self) -> AsyncIterator[bytes]:
        """The object's chunks in order, one request each (the reader sets the pace)."""
        stream = OBJ_STREAM_TEMPLATE.format(bucket=self.bucket)
        subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=self.bucket, obj=self.nuid)
        seq = 1
        for _ in range(self.chunks):
            message = await self.bus.js.get_msg(
                stream, seq=seq, subject=subject, direct=True, next=True
            )
            seq = (message.seq or seq) + 1
            yield message.data or b""


async def open_object(bus: Bus, name: str, bucket: str = FILES_BUCKET) -> StoredObject:
    """The stored object ``name``; NotFound if its bytes are not (or no longer) there."""
    store = await bus.js.object_store(bucket)
    try:
        info = await store.get_info(name)
    except ObjectNotFoundError as exc:
        raise NotFound("File not found") from exc
    return StoredObject(bus, bucket, info.nuid or "", info.size or 0, info.chunks or 0)
