"""Deployments: the list, the create form, and a deployment's page (releases, edit, delete).

The forms post to these pages (CSRF-checked) and call the registry like ``/v1/deployments``
does; a refusal is shown next to the field it names. Live parts of the deployment page
(instances, charts, decisions) and the cost estimate are filled in by ``deployments.js`` from
the ``/v1`` API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from cogplane.common.bus import Bus
from cogplane.common.contracts import deployments as d
from cogplane.common.contracts import models as m
from cogplane.common.errors import CogplaneError, Conflict, Forbidden, InvalidInput, NotFound
from cogplane.common.hardware import CATALOG
from cogplane.gateway.deps import BusDep, public_base
from cogplane.gateway.web.auth import WebViewer, check_csrf
from cogplane.gateway.web.pages.account import default_owner
from cogplane.gateway.web.pages.models import api_snippets
from cogplane.gateway.web.render import page
from cogplane.gateway.web.schema_form import example_input, input_fields, streams

router = APIRouter(include_in_schema=False)

FIELDS = ("owner", "name", "model", "version", "hardware", "min_instances", "max_instances")
RELEASE_FIELDS = ("version", "hardware", "min_instances", "max_instances")
GENERAL = "form"
DELETED = re.compile(r"[a-z0-9_.-]{1,64}/[a-z0-9_.-]{1,100}")
NAME_RULES = (
    "Use lowercase letters, digits, dashes, underscores and dots, starting and ending with a "
    "letter, digit or underscore"
)


@dataclass
class Submitted:
    """A deployment form as posted: its values (as typed) and what is wrong with them."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    def number(self, name: str) -> int:
        """The integer in ``name``; records an error (and gives 0) when it is not one."""
        text = self.values.get(name, "").strip()
        try:
            return int(text)
        except ValueError:
            self.errors[name] = "Enter a whole number" if text else "Required"
            return 0

    def refused(self, exc: CogplaneError) -> None:
        """Put each problem of a refusal next to the field it is about."""
        if isinstance(exc, InvalidInput):
            for problem in exc.extra.get("invalid_fields", []):
                name = str(problem.get("field", ""))
                text = str(problem.get("description", ""))
                key = name if name in FIELDS else GENERAL
                self.errors[key] = f"{self.errors[key]} {text}" if key in self.errors else text
            return
        self.errors[_field_of(exc)] = exc.detail


def _field_of(exc: CogplaneError) -> str:
    """Which field a refusal other than a 422 is about."""
    if isinstance(exc, Conflict) and "already exists" in exc.detail:
        return "name"
    if isinstance(exc, Forbidden):
        return "owner"
    if isinstance(exc, NotFound):
        return "owner" if exc.detail.startswith("Account") else "model"
    return GENERAL


def _values(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    found = {name: form.get(name) for name in names}
    return {name: value[:200] if isinstance(value, str) else "" for name, value in found.items()}


def _path(info: d.DeploymentInfo) -> str:
    return f"/deployments/{quote(info.owner)}/{quote(info.name)}"


async def _models(bus: Bus, viewer: m.Viewer) -> list[m.ModelInfo]:
    """Models the viewer may deploy (visible, with a version), theirs first."""
    found = await bus.request(m.LIST_MODELS, m.ListModels(viewer=viewer, limit=100))
    ready = [x for x in found.results if x.latest_version is not None]
    rank = {viewer.username: 0, **dict.fromkeys(viewer.organizations, 1)}
    return sorted(ready, key=lambda x: (rank.get(x.owner, 2), x.owner, x.name))


async def _versions(bus: Bus, viewer: m.Viewer, model: str) -> list[m.VersionInfo]:
    """The versions of ``model`` (owner/name), newest first; none when it is not visible."""
    owner, _, name = model.partition("/")
    if not owner or not name:
        return []
    try:
        query = m.ListVersions(viewer=viewer, owner=owner, name=name, limit=100)
        return (await bus.request(m.LIST_VERSIONS, query)).results
    except (NotFound, InvalidInput):
        return []


def _groups(models: list[m.ModelInfo], viewer: m.Viewer) -> list[tuple[str, list[m.ModelInfo]]]:
    """The picker's groups: yours, your organizations', public (empty ones left out)."""
    groups: dict[str, list[m.ModelInfo]] = {"Yours": [], "Your organizations'": [], "Public": []}
    for model in models:
        if model.owner == viewer.username:
            groups["Yours"].append(model)
        elif model.owner in viewer.organizations:
            groups["Your organizations'"].append(model)
        else:
            groups["Public"].append(model)
    return [(label, found) for label, found in groups.items() if found]


async def _new_form(
    request: Request, viewer: m.Viewer, bus: Bus, form: Submitted, status_code: int = 200
) -> HTMLResponse:
    models = await _models(bus, viewer)
    chosen = form.values.get("model") or (f"{models[0].owner}/{models[0].name}" if models else "")
    form.values["model"] = chosen
    return page(
        request,
        "deployments/new.html",
        status_code=status_code,
        form=form,
        owners=[viewer.username, *viewer.organizations],
        model_groups=_groups(models, viewer),
        versions=await _versions(bus, viewer, chosen),
        hardware=CATALOG,
    )


@router.get("/deployments", response_class=HTMLResponse)
async def list_deployments(
    request: Request, viewer: WebViewer, bus: BusDep, deleted: str | None = None
) -> HTMLResponse:
    found = await bus.request(d.LIST_DEPLOYMENTS, d.ListDeployments(viewer=viewer, limit=100))
    # Only a deployment's name is said back (the parameter comes from our own redirect).
    said = deleted if deleted and DELETED.fullmatch(deleted) else None
    return page(request, "deployments/list.html", deployments=found.results, deleted=said)


@router.get("/deployments/new", response_class=HTMLResponse)
async def new_deployment(
    request: Request, viewer: WebViewer, bus: BusDep, model: str = "", owner: str = ""
) -> HTMLResponse:
    chosen = owner if viewer.can_act_as(owner) else default_owner(request, viewer)
    values = {"owner": chosen, "model": model[:200], "hardware": "cpu"}
    values |= {"min_instances": "0", "max_instances": "1"}
    return await _new_form(request, viewer, bus, Submitted(values))


@router.post("/deployments/new", response_model=None)
async def create_deployment(request: Request, viewer: WebViewer, bus: BusDep) -> Response:
    """Create a deployment from the form; a refusal shows the form again with its reasons."""
    raw = await request.form()
    check_csrf(request, raw)
    form = Submitted(_values(raw, FIELDS))
    low, high = form.number("min_instances"), form.number("max_instances")
    values = form.values
    if not values["name"].strip():
        form.errors["name"] = "Required"
    if not form.errors:
        try:
            version = values["version"] or await _latest(bus, viewer, values["model"])
            request_body = d.CreateDeployment(
                viewer=viewer,
                owner=values["owner"] or None,
                name=values["name"].strip(),
                model=values["model"],
                version=version,
                hardware=values["hardware"],
                min_instances=low,
                max_instances=high,
            )
            info = await bus.request(d.CREATE_DEPLOYMENT, request_body)
            return RedirectResponse(_path(info), status_code=303)
        except CogplaneError as exc:
            form.refused(exc)
        except ValidationError as exc:  # the contract refuses a value (the name's pattern)
            form.refused(InvalidInput.of(exc))
            if "name" in form.errors:
                form.errors["name"] = NAME_RULES
    return await _new_form(request, viewer, bus, form, status_code=422)


async def _latest(bus: Bus, viewer: m.Viewer, model: str) -> str:
    """The newest version of ``model``: the form's default."""
    owner, _, name = model.partition("/")
    if not owner or not name:
        raise InvalidInput.field("model", "Choose a model")
    info = await bus.request(m.GET_MODEL, m.ModelRef(viewer=viewer, owner=owner, name=name))
    if info.latest_version is None:
        raise InvalidInput.field("version", f"{model} has no version yet: push one first")
    return info.latest_version.id


async def _model(bus: Bus, viewer: m.Viewer, ref: str) -> m.ModelInfo | None:
    owner, _, name = ref.partition("/")
    try:
        return await bus.request(m.GET_MODEL, m.ModelRef(viewer=viewer, owner=owner, name=name))
    except (NotFound, InvalidInput):
        return None


async def _show(
    request: Request,
    viewer: m.Viewer,
    bus: Bus,
    info: d.DeploymentInfo,
    *,
    form: Submitted | None = None,
    delete_error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    ref = d.DeploymentRef(viewer=viewer, owner=info.owner, name=info.name)
    releases = await bus.request(d.LIST_RELEASES, ref)
    current = info.current_release
    config = current.configuration
    if form is None:
        form = Submitted(
            {
                "version": current.version,
                "hardware": config.hardware,
                "min_instances": str(config.min_instances),
                "max_instances": str(config.max_instances),
            }
        )
    versions = await _versions(bus, viewer, current.model)
    running = next((v for v in versions if v.id == current.version), None)
    schema = running.openapi_schema if running else {}
    example = example_input(input_fields(schema))
    full_name = f"{info.owner}/{info.name}"
    snippets = api_snippets(
        public_base(request), full_name, example, streams(schema), deployment=True
    )
    return page(
        request,
        "deployments/show.html",
        status_code=status_code,
        deployment=info,
        release=current,
        releases=releases.results,
        model=await _model(bus, viewer, current.model),
        versions=versions,
        example_input=example,
        snippets=snippets,
        form=form,
        hardware=CATALOG,
        delete_error=delete_error,
        released=request.query_params.get("released"),
    )


@router.get("/deployments/{owner}/{name}", response_class=HTMLResponse)
async def show_deployment(
    request: Request, owner: str, name: str, viewer: WebViewer, bus: BusDep
) -> HTMLResponse:
    ref = d.DeploymentRef(viewer=viewer, owner=owner, name=name)
    return await _show(request, viewer, bus, await bus.request(d.GET_DEPLOYMENT, ref))


@router.post("/deployments/{owner}/{name}", response_model=None)
async def release_deployment(
    request: Request, owner: str, name: str, viewer: WebViewer, bus: BusDep
) -> Response:
    """Make a new release from the edit form; a refusal shows the page with its reasons."""
    raw = await request.form()
    check_csrf(request, raw)
    ref = d.DeploymentRef(viewer=viewer, owner=owner, name=name)
    info = await bus.request(d.GET_DEPLOYMENT, ref)
    form = Submitted(_values(raw, RELEASE_FIELDS))
    low, high = form.number("min_instances"), form.number("max_instances")
    if not form.errors:
        changes: dict[str, Any] = {"min_instances": low, "max_instances": high}
        changes |= {k: form.values[k] for k in ("version", "hardware") if form.values[k]}
        update = d.UpdateDeployment(viewer=viewer, owner=owner, name=name, **changes)
        try:
            info = await bus.request(d.UPDATE_DEPLOYMENT, update)
            number = info.current_release.number
            return RedirectResponse(f"{_path(info)}?released={number}", status_code=303)
        except CogplaneError as exc:
            form.refused(exc)
    return await _show(request, viewer, bus, info, form=form, status_code=422)


@router.post("/deployments/{owner}/{name}/delete", response_model=None)
async def delete_deployment(
    request: Request, owner: str, name: str, viewer: WebViewer, bus: BusDep
) -> Response:
    """Delete the deployment; while it is in use the page says why it cannot be."""
    raw = await request.form()
    check_csrf(request, raw)
    ref = d.DeploymentRef(viewer=viewer, owner=owner, name=name)
    info = await bus.request(d.GET_DEPLOYMENT, ref)
    try:
        await bus.request(d.DELETE_DEPLOYMENT, ref)
    except CogplaneError as exc:
        if exc.status == 404:
            raise
        return await _show(
            request, viewer, bus, info, delete_error=exc.detail, status_code=exc.status
        )
    deleted = quote(f"{info.owner}/{info.name}")
    return RedirectResponse(f"/deployments?deleted={deleted}", status_code=303)
