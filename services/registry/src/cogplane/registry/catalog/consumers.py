"""The catalog's NATS handlers: model and version calls, builds, and build events from runners."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from cogplane.common.contracts import models as c
from cogplane.common.contracts.base import Contract, Empty, Req, Resp, Rpc
from cogplane.common.contracts.events import parse_event
from cogplane.common.service import Runtime
from cogplane.registry.catalog.repository import CatalogRepository
from cogplane.registry.catalog.service import CatalogService, to_version

Handler = Callable[[CatalogService, Any], Awaitable[Contract]]
BUILD_EVENTS = "cogplane.events.builds.>"
BUILD_CONSUMER = "registry-builds"


async def _create_model(svc: CatalogService, req: c.CreateModel) -> c.ModelInfo:
    return await svc.model_info(await svc.create_model(req))


async def _get_model(svc: CatalogService, req: c.ModelRef) -> c.ModelInfo:
    return await svc.model_info(await svc.visible_model(req.viewer, req.owner, req.name))


async def _update_model(svc: CatalogService, req: c.UpdateModel) -> c.ModelInfo:
    return await svc.model_info(await svc.update_model(req))


async def _delete_model(svc: CatalogService, req: c.ModelRef) -> Empty:
    await svc.delete_model(req.viewer, req.owner, req.name)
    return Empty()


async def _list_models(svc: CatalogService, req: c.ListModels) -> c.ModelPage:
    return await svc.list_models(req)


async def _list_versions(svc: CatalogService, req: c.ListVersions) -> c.VersionPage:
    return await svc.list_versions(req)


async def _get_version(svc: CatalogService, req: c.VersionRef) -> c.VersionInfo:
    return to_version(await svc.version(req))


async def _delete_version(svc: CatalogService, req: c.VersionRef) -> Empty:
    await svc.delete_version(req)
    return Empty()


async def _resolve(svc: CatalogService, req: c.ResolveVersion) -> c.ResolvedVersion:
    return await svc.resolve(req.viewer, req.ref)


async def _get_build(svc: CatalogService, req: c.BuildRef) -> c.BuildInfo:
    return await svc.build_info(req.viewer, req.build_id, req.logs_offset)


HANDLERS: list[tuple[Rpc[Any, Any], Handler]] = [
    (c.CREATE_MODEL, _create_model),
    (c.GET_MODEL, _get_model),
    (c.UPDATE_MODEL, _update_model),
    (c.DELETE_MODEL, _delete_model),
    (c.LIST_MODELS, _list_models),
    (c.LIST_VERSIONS, _list_versions),
    (c.GET_VERSION, _get_version),
    (c.DELETE_VERSION, _delete_version),
    (c.GET_BUILD, _get_build),
    (c.RESOLVE_VERSION, _resolve),
]


def _in_unit_of_work(rt: Runtime, handler: Handler) -> Callable[[Req], Awaitable[Resp]]:
    async def run(request: Req) -> Resp:
        async with rt.require_db().unit_of_work() as session:
            result = await handler(CatalogService(CatalogRepository(session)), request)
        return result  # type: ignore[return-value]

    return run


async def register(rt: Runtime) -> None:
    """Serve the catalog's calls and follow the builds runners report."""
    db = rt.require_db()
    for rpc, handler in HANDLERS:
        await rt.bus.serve(rpc, _in_unit_of_work(rt, handler))

    async def start_build(req: c.StartBuild) -> c.BuildInfo:
        async with db.unit_of_work() as session:
            svc = CatalogService(CatalogRepository(session))
            build = await svc.start_build(req)
            info = await svc.build_info(req.viewer, build.id, 0)
        # Published after the commit; a crash in between leaves a build that never started,
        # which the caller sees as building and can push again.
        requested = c.BuildRequested(
            build_id=build.id, owner=req.owner, name=req.name, source_object=req.source_object
        )
        await rt.bus.publish(requested)
        return info

    async def on_build_event(data: bytes, _: dict[str, str]) -> None:
        event = parse_event(data)
        async with db.unit_of_work() as session:
            svc = CatalogService(CatalogRepository(session))
            if isinstance(event, c.BuildLogged):
                await svc.record_log(event)
            elif isinstance(event, c.BuildFinished):
                await svc.finish_build(event)

    await rt.bus.serve(c.START_BUILD, start_build)
    await rt.bus.consume(BUILD_CONSUMER, BUILD_EVENTS, on_build_event)
