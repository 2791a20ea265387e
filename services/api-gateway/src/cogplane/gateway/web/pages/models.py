"""Models: the list (yours, your organizations', public ones)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cogplane.common.contracts import models as m
from cogplane.gateway.deps import BusDep
from cogplane.gateway.web.auth import WebViewer
from cogplane.gateway.web.render import page

router = APIRouter(include_in_schema=False)


@router.get("/models", response_class=HTMLResponse)
async def list_models(request: Request, viewer: WebViewer, bus: BusDep) -> HTMLResponse:
    found = await bus.request(m.LIST_MODELS, m.ListModels(viewer=viewer, limit=100))
    mine = {viewer.username, *viewer.organizations}
    return page(
        request,
        "models/list.html",
        yours=[x for x in found.results if x.owner in mine],
        public=[x for x in found.results if x.owner not in mine],
    )
