"""The files' NATS handlers, and the loop that deletes expired files."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cogplane.common.contracts import files as c
from cogplane.common.contracts.base import Contract, Empty, Req, Resp, Rpc
from cogplane.common.db import utcnow
from cogplane.common.errors import CogplaneError
from cogplane.common.service import Runtime
from cogplane.registry.files.repository import FileRepository
from cogplane.registry.files.service import FileService, to_file
from cogplane.registry.files.store import FileStore

logger = logging.getLogger(__name__)
Handler = Callable[[FileService, Any], Awaitable[Contract]]
SWEEP_INTERVAL = 60.0


async def _create(svc: FileService, req: c.CreateFile) -> c.FileInfo:
    return to_file(await svc.create(req))


async def _get(svc: FileService, req: c.FileRef) -> c.FileInfo:
    return to_file(await svc.get(req.viewer, req.file_id))


async def _get_signed(svc: FileService, req: c.SignedFileRef) -> c.FileInfo:
    return to_file(await svc.owned(req.owner_id, req.file_id))


async def _list(svc: FileService, req: c.ListFiles) -> c.FilePage:
    return await svc.page(req)


async def _delete(svc: FileService, req: c.FileRef) -> Empty:
    await svc.delete(req.viewer, req.file_id)
    return Empty()


HANDLERS: list[tuple[Rpc[Any, Any], Handler]] = [
    (c.CREATE_FILE, _create),
    (c.GET_FILE, _get),
    (c.GET_SIGNED_FILE, _get_signed),
    (c.LIST_FILES, _list),
    (c.DELETE_FILE, _delete),
]


def _in_unit_of_work(rt: Runtime, handler: Handler) -> Callable[[Req], Awaitable[Resp]]:
    store = FileStore(rt.bus)

    async def run(request: Req) -> Resp:
        async with rt.require_db().unit_of_work() as session:
            result = await handler(FileService(FileRepository(session), store), request)
        return result  # type: ignore[return-value]

    return run


async def sweep_expired(rt: Runtime, batch: int = 100) -> int:
    """Delete every file past its expiry (rows and bytes), a batch per transaction."""
    store, total = FileStore(rt.bus), 0
    while True:
        async with rt.require_db().unit_of_work() as session:
            done = await FileService(FileRepository(session), store).sweep_expired(utcnow(), batch)
        total += done
        if done < batch:
            return total


async def _sweep_forever(rt: Runtime, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            if removed := await sweep_expired(rt):
                logger.info("deleted %d expired files", removed)
        except CogplaneError as exc:
            logger.warning("expired files not deleted: %s", exc.detail)
        except Exception as exc:  # NATS trouble: the next round tries again
            logger.warning("expired files not deleted: %s: %s", type(exc).__name__, exc)


async def register(rt: Runtime, sweep_interval: float = SWEEP_INTERVAL) -> None:
    """Serve the file calls and delete expired files once every ``sweep_interval`` seconds."""
    for rpc, handler in HANDLERS:
        await rt.bus.serve(rpc, _in_unit_of_work(rt, handler))
    rt.spawn(_sweep_forever(rt, sweep_interval), "expired files")
