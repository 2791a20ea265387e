"""Models: the list, the create form, and each model's page with its tabs.

Tabs are sub-paths of ``/models/{owner}/{name}``: the Run tab (a form generated from the
version's schema; page scripts run it through the ``/v1`` API), ``/api`` (code snippets),
``/versions``, ``/deployments`` and ``/settings``. Changes to the model are form posts with the
session's CSRF token, so they work without scripts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from cogplane.common.bus import Bus
from cogplane.common.contracts import deployments as d
from cogplane.common.contracts import models as m
from cogplane.common.contracts import predictions as p
from cogplane.common.errors import CogplaneError, NotFound
from cogplane.common.hardware import CATALOG, get_sku
from cogplane.gateway.api.models import ModelCreate, ModelPatch
from cogplane.gateway.deps import BusDep, PublicBase
from cogplane.gateway.web.auth import WebViewer, check_csrf
from cogplane.gateway.web.pages.account import default_owner
from cogplane.gateway.web.render import page
from cogplane.gateway.web.schema_form import example_input, input_fields, output_schema, streams

router = APIRouter(include_in_schema=False)
TABS = (
    ("run", "Run", ""),
    ("api", "API", "/api"),
    ("versions", "Versions", "/versions"),
    ("deployments", "Deployments", "/deployments"),  # the viewer's own deployments of it
)
OWNER_TABS = (("settings", "Settings", "/settings"),)
LINK_FIELDS = ("github_url", "paper_url", "license_url", "cover_image_url")
Errors = dict[str, str]
VersionQuery = Annotated[str | None, Query(max_length=300)]
PredictionQuery = Annotated[str | None, Query(max_length=64)]


# -- small helpers shared by the pages ----------------------------------------------------------


def safe_url(value: str | None) -> str | None:
    """A link users gave, only when it is http(s) (never ``javascript:`` and the like)."""
    if not value:
        return None
    parts = urlsplit(value.strip())
    return value.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def hardware_label(sku: str) -> str:
    """``Nvidia T4 GPU ($0.000225/s, $0.81/h)``, or the SKU when the catalog lacks it."""
    found = get_sku(sku)
    if found is None:
        return sku
    hourly = found.price_per_second * 3600
    return f"{found.name} (${found.price_per_second}/s, ${hourly:.2f}/h)"


def field_errors(exc: CogplaneError, fields: Iterable[str], fallback: str) -> Errors:
    """An API error as messages per form field (``fallback`` takes what names no field)."""
    known = set(fields)
    errors: Errors = {}
    for invalid in exc.extra.get("invalid_fields", []):
        name = str(invalid.get("field", "")).removeprefix("body.").split(".")[0]
        key = name if name in known else fallback
        errors[key] = (errors.get(key, "") + " " + str(invalid.get("description", ""))).strip()
    return errors or {fallback: exc.detail}


def validation_errors(exc: ValidationError, fields: Iterable[str], fallback: str) -> Errors:
    known, errors = set(fields), Errors()
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else fallback
        errors.setdefault(name if name in known else fallback, error["msg"])
    return errors


def form_text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


# -- the list and the create form ---------------------------------------------------------------


@router.get("/models", response_class=HTMLResponse)
async def list_models(request: Request, viewer: WebViewer, bus: BusDep) -> HTMLResponse:
    found = await bus.request(m.LIST_MODELS, m.ListModels(viewer=viewer, limit=100))
    mine = {viewer.username, *viewer.organizations}
    return page(
        request,
        "models/list.html",
        yours=[x for x in found.results if x.owner in mine],
        public=[x for x in found.results if x.owner not in mine],
        more=found.next_cursor is not None,
        hardware_label=hardware_label,
    )


NEW_FIELDS = ("owner", "name", "visibility", "hardware", "description")


def _new_page(
    request: Request, viewer: m.Viewer, values: dict[str, str], errors: Errors, status: int = 200
) -> HTMLResponse:
    return page(
        request,
        "models/new.html",
        status_code=status,
        owners=[viewer.username, *viewer.organizations],
        hardware=[(s.sku, hardware_label(s.sku)) for s in CATALOG],
        values=values,
        errors=errors,
        name_pattern=m.MODEL_NAME_PATTERN,
    )


@router.get("/models/new", response_class=HTMLResponse)
async def new_model(request: Request, viewer: WebViewer, owner: str = "") -> HTMLResponse:
    chosen = owner if viewer.can_act_as(owner) else default_owner(request, viewer)
    values = {"owner": chosen, "visibility": "public", "hardware": "cpu"}
    return _new_page(request, viewer, values, {})


@router.post("/models/new", response_model=None)
async def create_model(request: Request, viewer: WebViewer, bus: BusDep) -> Response:
    """Create a model from the form; errors come back next to their fields."""
    form = await request.form()
    check_csrf(request, form)
    values = {name: form_text(form, name) for name in NEW_FIELDS}
    try:
        body = ModelCreate(**{k: v for k, v in values.items() if v or k != "description"})
        await bus.request(m.CREATE_MODEL, m.CreateModel(viewer=viewer, **body.model_dump()))
    except ValidationError as exc:
        errors = validation_errors(exc, NEW_FIELDS, "name")
        return _new_page(request, viewer, values, errors, 422)
    except CogplaneError as exc:
        if exc.status >= 500:
            raise
        fallback = {403: "owner", 404: "owner"}.get(exc.status, "name")
        errors = field_errors(exc, NEW_FIELDS, fallback)
        return _new_page(request, viewer, values, errors, exc.status)
    target = f"/models/{quote(body.owner)}/{quote(body.name)}"
    return RedirectResponse(target, status_code=303)


# -- a model's page -----------------------------------------------------------------------------


@dataclass
class ModelView:
    """What every tab of a model's page shows around its content."""

    model: m.ModelInfo
    can_manage: bool
    tab: str
    links: list[tuple[str, str]] = field(default_factory=list)
    versions: list[m.VersionInfo] = field(default_factory=list)
    version: m.VersionInfo | None = None

    @property
    def full_name(self) -> str:
        return f"{self.model.owner}/{self.model.name}"

    @property
    def base_path(self) -> str:
        return f"/models/{quote(self.model.owner)}/{quote(self.model.name)}"

    @property
    def tabs(self) -> list[tuple[str, str, str]]:
        shown = TABS + (OWNER_TABS if self.can_manage else ())
        return [(key, label, self.base_path + suffix) for key, label, suffix in shown]


async def model_view(
    bus: Bus, viewer: m.Viewer, owner: str, name: str, tab: str, version_id: str | None = None
) -> ModelView:
    """The model (404 alike for missing and private ones), its versions and the chosen one."""
    model = await bus.request(m.GET_MODEL, m.ModelRef(viewer=viewer, owner=owner, name=name))
    view = ModelView(model=model, can_manage=viewer.can_act_as(model.owner), tab=tab)
    names = {"github_url": "GitHub", "paper_url": "Paper", "license_url": "License"}
    for key, label in names.items():
        if url := safe_url(getattr(model, key)):
            view.links.append((label, url))
    if tab in ("run", "api", "versions"):
        listing = m.ListVersions(viewer=viewer, owner=owner, name=name, limit=100)
        view.versions = (await bus.request(m.LIST_VERSIONS, listing)).results
        view.version = _chosen(view.versions, model.latest_version, version_id)
    return view


def _chosen(
    versions: list[m.VersionInfo], latest: m.VersionInfo | None, wanted: str | None
) -> m.VersionInfo | None:
    if wanted:
        for version in versions:
            if version.id == wanted or version.id.startswith(wanted):
                return version
        raise NotFound(f"Version {wanted} not found")
    return latest or (versions[0] if versions else None)


def model_page(
    request: Request, template: str, view: ModelView, status: int = 200, **context: Any
) -> HTMLResponse:
    return page(
        request,
        template,
        status_code=status,
        view=view,
        model=view.model,
        hardware_label=hardware_label,
        cover=safe_url(view.model.cover_image_url),
        **context,
    )


async def prefill_input(bus: Bus, viewer: m.Viewer, prediction_id: str | None) -> dict[str, Any]:
    """The inputs of one of the viewer's predictions (to run again), or nothing."""
    if not prediction_id:
        return {}
    try:
        ref = p.PredictionRef(viewer=viewer, prediction_id=prediction_id)
        record = await bus.request(p.GET_PREDICTION, ref)
    except CogplaneError:
        return {}
    return record.input


@router.get("/models/{owner}/{name}", response_class=HTMLResponse)
async def run_tab(
    request: Request,
    owner: str,
    name: str,
    viewer: WebViewer,
    bus: BusDep,
    version: VersionQuery = None,
    prediction: PredictionQuery = None,
) -> HTMLResponse:
    """The Run tab: a form generated from the chosen version's input schema."""
    view = await model_view(bus, viewer, owner, name, "run", version)
    schema = view.version.openapi_schema if view.version else {}
    fields = input_fields(schema, await prefill_input(bus, viewer, prediction))
    return model_page(
        request,
        "models/run.html",
        view,
        fields=fields,
        output_schema=output_schema(schema),
        prediction=prediction,
    )


@router.get("/models/{owner}/{name}/api", response_class=HTMLResponse)
async def api_tab(
    request: Request,
    owner: str,
    name: str,
    viewer: WebViewer,
    bus: BusDep,
    base: PublicBase,
    version: VersionQuery = None,
    prediction: PredictionQuery = None,
) -> HTMLResponse:
    """The API tab: the same inputs as code for Python, Node.js, cURL and raw HTTP."""
    view = await model_view(bus, viewer, owner, name, "api", version)
    snippets: list[Snippet] = []
    if view.version is not None:
        schema = view.version.openapi_schema
        fields = input_fields(schema, await prefill_input(bus, viewer, prediction))
        ref = f"{view.full_name}:{view.version.id}"
        snippets = api_snippets(base, ref, example_input(fields), streams(schema))
    return model_page(request, "models/api.html", view, snippets=snippets, base=base)


@router.get("/models/{owner}/{name}/versions", response_class=HTMLResponse)
async def versions_tab(
    request: Request, owner: str, name: str, viewer: WebViewer, bus: BusDep
) -> HTMLResponse:
    """The Versions tab: every version, newest first."""
    view = await model_view(bus, viewer, owner, name, "versions")
    return model_page(request, "models/versions.html", view, error=None)


@router.post("/models/{owner}/{name}/versions/{version_id}/delete", response_model=None)
async def delete_version(
    request: Request, owner: str, name: str, version_id: str, viewer: WebViewer, bus: BusDep
) -> Response:
    """Delete a version (the API's rules: private models only, not while deployed)."""
    form = await request.form()
    check_csrf(request, form)
    ref = m.VersionRef(viewer=viewer, owner=owner, name=name, version_id=version_id)
    try:
        await bus.request(m.DELETE_VERSION, ref)
    except CogplaneError as exc:
        if exc.status not in (403, 409, 422):
            raise
        view = await model_view(bus, viewer, owner, name, "versions")
        return model_page(request, "models/versions.html", view, exc.status, error=exc.detail)
    return RedirectResponse(f"/models/{quote(owner)}/{quote(name)}/versions", status_code=303)


@router.get("/models/{owner}/{name}/deployments", response_class=HTMLResponse)
async def deployments_tab(
    request: Request, owner: str, name: str, viewer: WebViewer, bus: BusDep
) -> HTMLResponse:
    """The Deployments tab: the viewer's deployments of this model."""
    view = await model_view(bus, viewer, owner, name, "deployments")
    found: list[d.DeploymentInfo] = []
    cursor: str | None = None
    for _ in range(10):  # at most 1000 deployments looked through
        listing = d.ListDeployments(viewer=viewer, cursor=cursor)
        page_ = await bus.request(d.LIST_DEPLOYMENTS, listing)
        found += [x for x in page_.results if x.current_release.model == view.full_name]
        if (cursor := page_.next_cursor) is None:
            break
    return model_page(request, "models/deployments.html", view, deployments=found)


SETTINGS_FIELDS = ("description", "visibility", "hardware", *LINK_FIELDS)


def _settings_page(
    request: Request, view: ModelView, values: dict[str, str], errors: Errors, status: int = 200
) -> HTMLResponse:
    return model_page(
        request,
        "models/settings.html",
        view,
        status,
        values=values,
        errors=errors,
        hardware=[(s.sku, hardware_label(s.sku)) for s in CATALOG],
        saved=request.query_params.get("saved") == "1",
    )


async def _managed_view(bus: Bus, viewer: m.Viewer, owner: str, name: str) -> ModelView:
    view = await model_view(bus, viewer, owner, name, "settings")
    if not view.can_manage:  # others see the tabs they may use, and no such page
        raise NotFound("There is no such page.")
    return view


@router.get("/models/{owner}/{name}/settings", response_class=HTMLResponse)
async def settings_tab(
    request: Request, owner: str, name: str, viewer: WebViewer, bus: BusDep
) -> HTMLResponse:
    """The Settings tab: description, links, visibility, hardware, and deleting the model."""
    view = await _managed_view(bus, viewer, owner, name)
    values = {k: getattr(view.model, k) or "" for k in SETTINGS_FIELDS}
    return _settings_page(request, view, values, {})


@router.post("/models/{owner}/{name}/settings", response_model=None)
async def save_settings(
    request: Request, owner: str, name: str, viewer: WebViewer, bus: BusDep
) -> Response:
    """Save the settings form (empty links and description clear them)."""
    form = await request.form()
    check_csrf(request, form)
    view = await _managed_view(bus, viewer, owner, name)
    values = {k: form_text(form, k) for k in SETTINGS_FIELDS}
    try:
        body = ModelPatch(**{k: (v or None) for k, v in values.items()})
        fields = sorted(body.model_fields_set)
        update = m.UpdateModel(
            viewer=viewer, owner=owner, name=name, fields_set=fields, **body.model_dump()
        )
        await bus.request(m.UPDATE_MODEL, update)
    except ValidationError as exc:
        errors = validation_errors(exc, SETTINGS_FIELDS, "description")
        return _settings_page(request, view, values, errors, 422)
    except CogplaneError as exc:
        if exc.status >= 500:
            raise
        errors = field_errors(exc, SETTINGS_FIELDS, "description")
        return _settings_page(request, view, values, errors, exc.status)
    return RedirectResponse(f"{view.base_path}/settings?saved=1", status_code=303)


@router.post("/models/{owner}/{name}/delete", response_model=None)
async def delete_model(
    request: Request, owner: str, name: str, viewer: WebViewer, bus: BusDep
) -> Response:
    """Delete the model; the API's refusal (public, has versions, deployed) is shown as is."""
    form = await request.form()
    check_csrf(request, form)
    view = await _managed_view(bus, viewer, owner, name)
    try:
        await bus.request(m.DELETE_MODEL, m.ModelRef(viewer=viewer, owner=owner, name=name))
    except CogplaneError as exc:
        if exc.status not in (403, 409):
            raise
        values = {k: getattr(view.model, k) or "" for k in SETTINGS_FIELDS}
        return _settings_page(request, view, values, {"delete": exc.detail}, exc.status)
    return RedirectResponse("/models", status_code=303)


# -- the API tab's snippets ---------------------------------------------------------------------


def py_literal(value: Any, indent: int = 0) -> str:
    """A JSON value as Python source."""
    if value is None or isinstance(value, bool):
        return {None: "None", True: "True", False: "False"}[value]
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(x, indent) for x in value) + "]"
    if isinstance(value, dict):
        pad = " " * (indent + 4)
        items = "".join(
            f"{pad}{json.dumps(k)}: {py_literal(v, indent + 4)},\n" for k, v in value.items()
        )
        return "{\n" + items + " " * indent + "}" if value else "{}"
    return json.dumps(value)


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@dataclass(frozen=True)
class Snippet:
    key: str
    label: str
    setup: str
    code: str


PY_CLIENT = (
    "import os\n\nimport replicate\n\n"
    "client = replicate.Client(\n"
    '    api_token=os.environ["REPLICATE_API_TOKEN"],\n'
    "    base_url={base},\n)\n"
)
NODE_CLIENT = (
    'import Replicate from "replicate";\n\n'
    "const replicate = new Replicate({{\n"
    "  auth: process.env.REPLICATE_API_TOKEN,\n"
    "  baseUrl: {base},\n}});\n"
)


def _python(base: str, ref: str, inputs: dict[str, Any], streaming: bool, deployment: bool) -> str:
    code = PY_CLIENT.format(base=json.dumps(base))
    given = f"input={py_literal(inputs, 4)},"
    if deployment:
        return code + (
            f"deployment = client.deployments.get({json.dumps(ref)})\n"
            f"prediction = deployment.predictions.create(\n    {given}\n)\n"
            "prediction.wait()\nprint(prediction.output)\n"
        )
    call = "stream" if streaming else "run"
    show = 'for event in output:\n    print(str(event), end="")' if streaming else "print(output)"
    return code + f"output = client.{call}(\n    {json.dumps(ref)},\n    {given}\n)\n{show}\n"


def _node(base: str, ref: str, inputs: dict[str, Any], deployment: bool) -> str:
    code = NODE_CLIENT.format(base=json.dumps(base + "/v1"))
    given = "{\n  input: " + json.dumps(inputs, indent=2).replace("\n", "\n  ") + ",\n}"
    if deployment:
        owner, _, name = ref.partition("/")
        return code + (
            "let prediction = await replicate.deployments.predictions.create(\n"
            f"  {json.dumps(owner)},\n  {json.dumps(name)},\n  "
            + given.replace("\n", "\n  ")
            + "\n);\nprediction = await replicate.wait(prediction);\n"
            "console.log(prediction.output);\n"
        )
    return (
        code
        + f"const output = await replicate.run({json.dumps(ref)}, {given});\n"
        + ("console.log(output);\n")
    )


def api_snippets(
    base: str,
    ref: str,
    inputs: dict[str, Any],
    streaming: bool = False,
    *,
    deployment: bool = False,
) -> list[Snippet]:
    """Code that runs ``ref`` with ``inputs`` on this platform.

    ``ref`` is a version (``owner/name:version``), or with ``deployment`` a deployment
    (``owner/name``), whose endpoint the code then calls.
    """
    host = urlsplit(base).netloc or base
    body: dict[str, Any] = {"input": inputs}
    path = f"/v1/deployments/{ref}/predictions"
    if not deployment:
        path, body = "/v1/predictions", {"version": ref.split(":", 1)[-1], "input": inputs}
    env = f"export REPLICATE_API_TOKEN=<your API token>\nexport REPLICATE_BASE_URL={base}"
    curl = (
        "curl -s -X POST \\\n"
        '  -H "Authorization: Bearer $REPLICATE_API_TOKEN" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        '  -H "Prefer: wait" \\\n'
        f"  -d {shell_quote(json.dumps(body))} \\\n"
        f"  {base}{path}\n"
    )
    http = (
        f"POST {path} HTTP/1.1\nHost: {host}\n"
        "Authorization: Bearer <your API token>\nContent-Type: application/json\n"
        f"Prefer: wait\n\n{json.dumps(body, indent=2)}\n"
    )
    python = _python(base, ref, inputs, streaming, deployment)
    return [
        Snippet("python", "Python", "pip install replicate\n" + env, python),
        Snippet(
            "node", "Node.js", "npm install replicate\n" + env, _node(base, ref, inputs, deployment)
        ),
        Snippet("curl", "cURL", env, curl),
        Snippet("http", "HTTP", "", http),
    ]
