"""The registry's one effect on the files object store: removing a file's bytes for good."""

from __future__ import annotations

import base64

from nats.js.errors import ObjectNotFoundError
from nats.js.object_store import (
    OBJ_CHUNKS_PRE_TEMPLATE,
    OBJ_META_PRE_TEMPLATE,
    OBJ_STREAM_TEMPLATE,
)

from cogplane.common.bus import Bus
from cogplane.common.contracts.base import FILES_BUCKET


class FileStore:
    """Removes objects from the files bucket; removing a missing object is not an error."""

    def __init__(self, bus: Bus, bucket: str = FILES_BUCKET) -> None:
        self.bus = bus
        self.bucket = bucket

    async def remove(self, name: str) -> None:
        """Purge the object's chunks, then its metadata.

        The object store's own ``delete`` keeps a tombstone per name forever; purging both
        subjects leaves nothing behind. Chunks go first, so an interruption leaves the metadata
        that lets a retry find them.
        """
        store = await self.bus.js.object_store(self.bucket)
        try:
            info = await store.get_info(name, show_deleted=True)
        except ObjectNotFoundError:
            return
        stream = OBJ_STREAM_TEMPLATE.format(bucket=self.bucket)
        if info.nuid:
            chunks = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=self.bucket, obj=info.nuid)
            await self.bus.js.purge_stream(stream, subject=chunks)
        key = base64.urlsafe_b64encode(name.encode()).decode()
        meta = OBJ_META_PRE_TEMPLATE.format(bucket=self.bucket, obj=key)
        await self.bus.js.purge_stream(stream, subject=meta)
