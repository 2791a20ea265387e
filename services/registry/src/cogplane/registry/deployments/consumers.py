"""Deployments' NATS handlers: the registry's calls, and the events that announce releases.

Events are published after the commit. If publishing fails the caller gets a 503 although the
change is stored; the scheduler still learns a deployment's current release from every
prediction (``SubmitPrediction.deployment``), and the next release or deletion is announced again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cogplane.common.contracts import deployments as d
from cogplane.common.contracts.base import Empty, Event, Req, Resp, Rpc
from cogplane.common.errors import CogplaneError, Unavailable
from cogplane.common.service import Runtime
from cogplane.registry.config import RegistrySettings
from cogplane.registry.deployments.repository import DeploymentRepository
from cogplane.registry.deployments.service import DeploymentService, Limits, refuse_if_busy, to_info

Handler = Callable[[DeploymentService, Any], Awaitable[Any]]


async def _get(svc: DeploymentService, req: d.DeploymentRef) -> d.DeploymentInfo:
    return to_info(await svc.visible(req.viewer, req.owner, req.name))


async def _list(svc: DeploymentService, req: d.ListDeployments) -> d.DeploymentPage:
    return await svc.list_deployments(req)


async def _releases(svc: DeploymentService, req: d.DeploymentRef) -> d.ReleaseList:
    return await svc.releases(req)


async def _resolve(svc: DeploymentService, req: d.DeploymentRef) -> d.ResolvedDeployment:
    return await svc.resolve(req)


async def _create(
    svc: DeploymentService, req: d.CreateDeployment
) -> tuple[d.DeploymentInfo, d.DeploymentReleased]:
    current, event = await svc.create(req)
    return to_info(current), event


async def _update(
    svc: DeploymentService, req: d.UpdateDeployment
) -> tuple[d.DeploymentInfo, d.DeploymentReleased]:
    current, event = await svc.update(req)
    return to_info(current), event


QUERIES: list[tuple[Rpc[Any, Any], Handler]] = [
    (d.GET_DEPLOYMENT, _get),
    (d.LIST_DEPLOYMENTS, _list),
    (d.LIST_RELEASES, _releases),
    (d.RESOLVE_DEPLOYMENT, _resolve),
]
RELEASES: list[tuple[Rpc[Any, Any], Handler]] = [
    (d.CREATE_DEPLOYMENT, _create),
    (d.UPDATE_DEPLOYMENT, _update),
]
SUBJECTS = [rpc.subject for rpc, _ in (*QUERIES, *RELEASES)] + [d.DELETE_DEPLOYMENT.subject]


async def announce(rt: Runtime, event: Event) -> None:
    """Publish ``event`` (after the commit); a failure is a 503 to the caller."""
    try:
        await rt.bus.publish(event)
    except CogplaneError:
        raise
    except Exception as exc:
        raise Unavailable(
            f"The change is saved but could not be announced ({type(exc).__name__}); "
            "it takes effect with the next prediction or change"
        ) from exc


class _Units:
    """One unit of work (one transaction) per call, with a service bound to it."""

    def __init__(self, rt: Runtime) -> None:
        settings = rt.settings
        assert isinstance(settings, RegistrySettings)
        self.db = rt.require_db()
        self.limits = Limits(settings.deployment_max_min, settings.deployment_max_max)

    def service(self, session: AsyncSession) -> DeploymentService:
        return DeploymentService(DeploymentRepository(session), self.limits)

    def query(self, handler: Handler) -> Callable[[Req], Awaitable[Resp]]:
        async def run(request: Req) -> Resp:
            async with self.db.unit_of_work() as session:
                result: Resp = await handler(self.service(session), request)
            return result

        return run

    def release(self, rt: Runtime, handler: Handler) -> Callable[[Req], Awaitable[Resp]]:
        async def run(request: Req) -> Resp:
            async with self.db.unit_of_work() as session:
                info, event = await handler(self.service(session), request)
            await announce(rt, event)
            result: Resp = info
            return result

        return run


async def _delete(rt: Runtime, units: _Units, req: d.DeploymentRef) -> Empty:
    """Delete an idle deployment: the scheduler must say that nothing runs or waits on it."""
    async with units.db.unit_of_work() as session:
        row, _ = await units.service(session).visible(req.viewer, req.owner, req.name)
        deployment_id = row.id
    # Asked outside any transaction; no answer is a 503 and nothing is deleted.
    activity = await rt.bus.request(
        d.TARGET_ACTIVITY, d.TargetRef(target=d.deployment_target(deployment_id))
    )
    refuse_if_busy(req.owner, req.name, activity)
    async with units.db.unit_of_work() as session:
        await units.service(session).delete(req.viewer, req.owner, req.name, deployment_id)
    await announce(rt, d.DeploymentDeleted(deployment_id=deployment_id))
    return Empty()


async def register(rt: Runtime) -> None:
    """Serve every deployment call."""
    units = _Units(rt)
    for rpc, handler in QUERIES:
        await rt.bus.serve(rpc, units.query(handler))
    for rpc, handler in RELEASES:
        await rt.bus.serve(rpc, units.release(rt, handler))

    async def delete(req: d.DeploymentRef) -> Empty:
        return await _delete(rt, units, req)

    await rt.bus.serve(d.DELETE_DEPLOYMENT, delete)
