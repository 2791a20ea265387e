"""The models and predictions pages, rendered by the gateway: forms, tabs, 404s and escaping.

The module runs a registry and a gateway on a NATS server of its own, with a stand-in for the
scheduler (it keeps the predictions a test gives it, and records what the gateway submits) and
for billing's prediction costs. Browsers sign in with a token and keep their cookies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import cogplane.registry
from cogplane.common.bus import Bus
from cogplane.common.contracts import accounts as c
from cogplane.common.contracts import billing as b
from cogplane.common.contracts import models as m
from cogplane.common.contracts import predictions as p
from cogplane.common.contracts.base import Empty, new_id
from cogplane.common.contracts.webhooks import GET_STREAM_KEY, StreamKey
from cogplane.common.db import utcnow
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from cogplane.common.errors import NotFound
from cogplane.common.testing.apps import running
from cogplane.common.testing.fixtures import migrate_service
from cogplane.common.testing.wait import eventually
from cogplane.gateway.app import create_app as create_gateway
from cogplane.gateway.config import GatewaySettings
from cogplane.gateway.web.pages.models import api_snippets, safe_url
from cogplane.gateway.web.schema_form import example_input, input_fields
from cogplane.registry.app import create_app as create_registry
from cogplane.registry.bootstrap import bootstrap
from cogplane.registry.config import RegistrySettings
from cogplane.registry.models import SCHEMA

HTML = {"Accept": "text/html"}
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
SCRIPT = '<script>alert("x")</script>'
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
PAYLOADS = (SCRIPT, ATTRIBUTE)
# What must never reach a page unescaped, whatever field the payloads went into.
RAW = ("<script>alert", "<img src=x", "onerror=alert(1)>")


def form_schema(text: str = "") -> dict[str, Any]:
    """A schema like Cog's for examples/form, with ``text`` in every user-written place."""
    return {
        "openapi": "3.0.2",
        "paths": {"/predictions": {"post": {}}},
        "components": {
            "schemas": {
                "Input": {
                    "type": "object",
                    "required": ["text", "image"],
                    "properties": {
                        "style": {
                            "x-order": 1,
                            "allOf": [{"$ref": "#/components/schemas/style"}],
                            "default": "plain",
                            "description": f"How to render {text}",
                        },
                        "text": {
                            "x-order": 0,
                            "title": f"Text {text}",
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 200,
                            "description": f"Text to format {text}",
                        },
                        "width": {
                            "x-order": 2,
                            "title": "Width",
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 80,
                            "default": 0,
                        },
                        "temperature": {
                            "x-order": 3,
                            "title": "Temperature",
                            "type": "number",
                            "minimum": 0,
                            "default": 0.7,
                        },
                        "api_key": {
                            "x-order": 4,
                            "title": "Api Key",
                            "type": "string",
                            "format": "password",
                            "writeOnly": True,
                            "x-cog-secret": True,
                            "default": None,
                            "nullable": True,
                        },
                        "suffix": {
                            "x-order": 5,
                            "title": "Suffix",
                            "type": "string",
                            "nullable": True,
                            "default": f"end {text}",
                        },
                        "tags": {
                            "x-order": 6,
                            "title": "Tags",
                            "type": "array",
                            "items": {"type": "string"},
                            "default": ["a", text],
                        },
                        "loud": {"x-order": 7, "title": "Loud", "type": "boolean", "default": True},
                        "image": {
                            "x-order": 8,
                            "title": "Image",
                            "type": "string",
                            "format": "uri",
                            "x-cog-accept": "image/*",
                        },
                        "either": {
                            "x-order": 9,
                            "title": "Either",
                            "anyOf": [{"type": "integer"}, {"type": "string"}],
                        },
                    },
                },
                "style": {
                    "title": "style",
                    "enum": ["plain", "shout", text or "whisper"],
                    "type": "string",
                },
                "Output": {"type": "string", "title": "Output"},
            }
        },
    }


@dataclass
class User:
    token: str
    caller: c.Caller

    @property
    def username(self) -> str:
        return self.caller.account.username

    @property
    def org(self) -> str:
        return self.caller.organizations[0]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def viewer(self) -> m.Viewer:
        return m.Viewer(
            account_id=self.caller.account.id,
            username=self.username,
            organizations=self.caller.organizations,
        )


class Browser:
    """A signed-in browser: its own cookie jar, and the CSRF token of the latest page."""

    def __init__(self, app: FastAPI) -> None:
        transport = httpx.ASGITransport(app=app)
        # https: the public URL is https, so the session cookie is Secure.
        self.http = httpx.AsyncClient(transport=transport, base_url="https://testserver")
        self.csrf = ""

    async def sign_in(self, token: str) -> Browser:
        shown = await self.http.get("/login", headers=HTML)
        nonce = re.search(r'name="nonce" value="([^"]+)"', shown.text)
        assert nonce is not None  # the sign-in form's guard against login CSRF
        data = {"token": token, "nonce": nonce.group(1)}
        response = await self.http.post("/login", data=data, headers=HTML)
        assert response.status_code == 303, response.text
        await self.get("/models")
        return self

    async def get(self, path: str, status: int = 200) -> str:
        response = await self.http.get(path, headers=HTML)
        assert response.status_code == status, (path, response.status_code, response.text[:500])
        if found := CSRF.search(response.text):
            self.csrf = found.group(1)
        return response.text

    async def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        body = {"csrf_token": self.csrf, **(data or {})}
        return await self.http.post(path, data=body, headers=HTML)

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf}
        return await self.http.request(method, path, headers=headers, **kwargs)


@dataclass
class Stack:
    app: FastAPI
    http: httpx.AsyncClient
    bus: Bus
    registry: RegistrySettings
    records: dict[str, p.PredictionRecord] = field(default_factory=dict)
    submitted: list[p.SubmitPrediction] = field(default_factory=list)
    costs: dict[str, str] = field(default_factory=dict)

    async def user(self) -> User:
        result = await bootstrap(self.registry, unique("admin"), unique("org"))
        token = str(result["token"])
        return User(token, await self.bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=token)))

    async def browser(self, user: User) -> Browser:
        return await Browser(self.app).sign_in(user.token)

    async def model(self, user: User, visibility: str = "public", **fields: Any) -> str:
        name = unique("model")
        body = {"owner": user.username, "name": name, "visibility": visibility, "hardware": "cpu"}
        created = await self.http.post("/v1/models", json=body | fields, headers=user.headers)
        assert created.status_code == 201, created.text
        return f"{user.username}/{name}"

    async def version(self, user: User, model: str, schema: dict[str, Any]) -> str:
        """A ready version of ``model`` with ``schema``, built as a runner would report it."""
        owner, name = model.split("/")
        start = m.StartBuild(
            viewer=user.viewer(), owner=owner, name=name, source_object="s", size=1
        )
        build = await self.bus.request(m.START_BUILD, start)
        version = m.BuiltVersion(
            id=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
            cog_version="0.23.1",
            openapi_schema=schema,
            python_version="3.11",
            predict="predict.py:Predictor",
            env_key="e" * 64,
            source_digest="s" * 64,
        )
        await self.bus.publish(m.BuildFinished(build_id=build.id, version=version))

        async def ready() -> bool:
            ref = m.BuildRef(viewer=user.viewer(), build_id=build.id)
            return bool((await self.bus.request(m.GET_BUILD, ref)).status == "ready")

        await eventually(ready, timeout=10)
        return version.id

    def prediction(self, user: User, model: str, version: str, **fields: Any) -> str:
        """A prediction of ``user`` that the scheduler stand-in knows."""
        values: dict[str, Any] = {
            "id": new_id(),
            "owner_account_id": user.caller.account.id,
            "owner": user.username,
            "model": model,
            "version": version,
            "target": f"version:{version}",
            "input": {"text": "hi"},
            "output": "ok",
            "status": "succeeded",
            "created_at": utcnow(),
            "started_at": utcnow(),
            "completed_at": utcnow(),
            "metrics": {"predict_time": 0.25, "total_time": 0.5},
            "timings": {"queued_ms": 12.5, "dispatch_to_start_ms": 3.0, "run_ms": 250.0},
        }
        record = p.PredictionRecord.model_validate(values | fields)
        self.records[record.id] = record
        return record.id


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(Path(tmp_path_factory.mktemp("web-models-nats")) / "nats", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def own_registry_settings(
    postgres: EmbeddedPostgres, migrated_schemas: set[str], own_nats: EmbeddedNats
) -> RegistrySettings:
    migrate_service(postgres, migrated_schemas, cogplane.registry.__file__, SCHEMA)
    return RegistrySettings(database_url=postgres.url, nats_url=own_nats.url, port=0)


@pytest.fixture(scope="module")
async def stack(
    own_registry_settings: RegistrySettings, postgres: EmbeddedPostgres, own_nats: EmbeddedNats
) -> AsyncIterator[Stack]:
    settings = GatewaySettings(
        database_url=postgres.url,
        nats_url=own_nats.url,
        port=0,
        public_url="https://cogplane.example",
    )
    app = create_gateway(settings)
    bus = Bus(own_nats.url, "web-models-tests", timedelta(seconds=5))
    stand_in = Bus(own_nats.url, "scheduler", timedelta(seconds=5))
    async with running(create_registry(own_registry_settings)), running(app) as http:
        await bus.connect()
        await stand_in.connect()
        stack = Stack(app, http, bus, own_registry_settings)

        async def stream_key(_: Empty) -> StreamKey:
            return StreamKey(key=base64.b64encode(b"k" * 32).decode())

        async def get(ref: p.PredictionRef) -> p.PredictionRecord:
            record = stack.records.get(ref.prediction_id)
            if record is None or record.owner_account_id != ref.viewer.account_id:
                raise NotFound(f"Prediction {ref.prediction_id} not found")
            return record

        async def listed(query: p.ListPredictions) -> p.PredictionPage:
            mine = [
                r
                for r in stack.records.values()
                if r.owner_account_id == query.viewer.account_id
                and (query.source is None or r.source == query.source)
            ]
            return p.PredictionPage(results=mine[::-1])

        async def submit(request: p.SubmitPrediction) -> p.PredictionRecord:
            stack.submitted.append(request)
            spec = request.version
            record = p.PredictionRecord(
                id=new_id(),
                owner_account_id=request.viewer.account_id,
                owner=request.viewer.username,
                model=f"{spec.owner}/{spec.name}",
                version=spec.version_id,
                target=spec.target,
                input=request.input,
                status="starting",
                source=request.source,
                created_at=utcnow(),
            )
            stack.records[record.id] = record
            return record

        async def costs(query: b.PredictionCostQuery) -> b.PredictionCosts:
            known = {i: stack.costs[i] for i in query.prediction_ids if i in stack.costs}
            return b.PredictionCosts(costs=known)

        await stand_in.serve(GET_STREAM_KEY, stream_key)
        await stand_in.serve(p.GET_PREDICTION, get)
        await stand_in.serve(p.LIST_PREDICTIONS, listed)
        await stand_in.serve(p.SUBMIT_PREDICTION, submit)
        await stand_in.serve(b.PREDICTION_COSTS, costs)
        yield stack
        await stand_in.close()
        await bus.close()


def assert_escaped(page: str) -> None:
    for raw in RAW:
        assert raw not in page, f"{raw!r} reached the page unescaped"


def error_of(page: str, name: str) -> str:
    found = re.search(rf'<p class="error field-error" id="err-{name}"[^>]*>([^<]*)</p>', page)
    assert found, f"no error slot for {name}"
    return found.group(1)


# -- models: list, create ---------------------------------------------------------------------


async def test_create_form_offers_you_and_your_organizations(stack: Stack) -> None:
    user = await stack.user()
    browser = await stack.browser(user)
    page = await browser.get("/models/new")
    assert f'<option value="{user.username}" selected>' in page
    assert f'<option value="{user.org}"' in page
    assert 'data-pattern="^[a-z0-9_]' in page
    assert "Nvidia T4 GPU ($0.000225/s, $0.81/h)" in page
    forged = await browser.http.post(
        "/models/new", data={"owner": user.username, "name": "x"}, headers=HTML
    )
    assert forged.status_code == 403


async def test_create_shows_each_refusal_next_to_its_field(stack: Stack) -> None:
    user = await stack.user()
    browser = await stack.browser(user)
    base = {"owner": user.username, "visibility": "public", "hardware": "cpu"}
    bad = await browser.post("/models/new", base | {"name": "Bad Name"})
    assert bad.status_code == 422
    assert "String should match pattern" in error_of(bad.text, "name")
    assert 'value="Bad Name"' in bad.text  # what was typed stays
    stranger = await browser.post("/models/new", base | {"owner": "someone-else", "name": "ok"})
    assert stranger.status_code == 403
    assert "organization you belong to" in error_of(stranger.text, "owner")
    hardware = await browser.post("/models/new", base | {"name": "ok", "hardware": "gpu-nope"})
    assert hardware.status_code == 422
    assert "Unknown hardware" in error_of(hardware.text, "hardware")
    name = unique("made")
    made = await browser.post("/models/new", base | {"name": name, "owner": user.org})
    assert made.status_code == 303
    assert made.headers["location"] == f"/models/{user.org}/{name}"
    again = await browser.post("/models/new", base | {"name": name, "owner": user.org})
    assert again.status_code == 409
    assert "already exists" in error_of(again.text, "name")
    listing = await browser.get("/models")
    assert f'href="/models/{user.org}/{name}"' in listing


async def test_private_models_are_404_on_every_tab_for_others(stack: Stack) -> None:
    owner, other = await stack.user(), await stack.user()
    model = await stack.model(owner, "private")
    await stack.version(owner, model, form_schema())
    mine, theirs = await stack.browser(owner), await stack.browser(other)
    for tab in ("", "/api", "/versions", "/deployments", "/settings"):
        await mine.get(f"/models/{model}{tab}")
        page = await theirs.get(f"/models/{model}{tab}", status=404)
        assert 'class="tabs"' not in page
    assert model not in await theirs.get("/models")
    public = await stack.model(owner, "public")
    page = await theirs.get(f"/models/{public}")
    assert "/settings" not in page  # the tabs of others' models: no Settings, no Deployments
    await theirs.get(f"/models/{public}/settings", status=404)


# -- the Run tab ---------------------------------------------------------------------------------


async def test_run_tab_generates_the_form_from_the_schema(stack: Stack) -> None:
    user = await stack.user()
    model = await stack.model(user)
    browser = await stack.browser(user)
    empty = await browser.get(f"/models/{model}")
    assert f'data-await-version="{model}"' in empty
    assert f"cogplane push {model}" in empty
    version = await stack.version(user, model, form_schema())
    page = await browser.get(f"/models/{model}")
    assert f'data-version="{version}"' in page
    names = re.findall(r'class="field field-\w+" data-name="(\w+)" data-kind="(\w+)"', page)
    assert names == [
        ("text", "textarea"),
        ("style", "choice"),
        ("width", "integer"),
        ("temperature", "number"),
        ("api_key", "secret"),
        ("suffix", "textarea"),
        ("tags", "list"),
        ("loud", "boolean"),
        ("image", "file"),
        ("either", "json"),
    ]
    assert re.search(r'<textarea id="in-text" name="text" rows="3" required', page)
    assert 'maxlength="200"' in page
    assert '<option value="&#34;shout&#34;" >shout</option>' in page.replace("  ", " ")
    assert re.search(r'id="in-width"[^>]*value="0" step="1"\s+min="0" max="80"', page)
    assert 'id="range-width" aria-label="Width slider"' in page
    assert "range-temperature" not in page  # a slider needs both bounds
    assert '<input type="password" id="in-api_key"' in page
    assert '<input type="file" id="in-image" name="image"  accept="image/*"' in page
    assert '<input type="checkbox" id="in-loud" name="loud" checked' in page
    assert ">a\n</textarea>" in page.replace("a\n\n", "a\n") or "a\n</textarea>" in page
    assert "Default: <code>plain</code>" in page
    assert "from 0 to 80" in page
    assert '<script type="application/json" id="output-schema">' in page


async def test_run_tab_fills_in_a_predictions_inputs_but_never_its_secrets(stack: Stack) -> None:
    user = await stack.user()
    model = await stack.model(user)
    version = await stack.version(user, model, form_schema())
    given = {"text": "again", "width": 12, "api_key": "s3cret-value", "style": "shout"}
    prediction = stack.prediction(user, model, version, input=given)
    browser = await stack.browser(user)
    page = await browser.get(f"/models/{model}?prediction={prediction}")
    assert re.search(r'id="in-text" name="text"[^>]*>again</textarea>', page)
    assert re.search(r'id="in-width"[^>]*value="12"', page)
    assert '<option value="&#34;shout&#34;" selected>' in page
    assert "s3cret-value" not in page
    await browser.get(f"/models/{model}?version=nope", status=404)


async def test_web_predictions_are_source_web_and_token_ones_api(stack: Stack) -> None:
    user = await stack.user()
    model = await stack.model(user)
    version = await stack.version(user, model, form_schema())
    browser = await stack.browser(user)
    body = {"version": version, "input": {"text": "hi", "image": "https://example.com/a.png"}}
    made = await browser.api("POST", "/v1/predictions", json=body)
    assert made.status_code == 201, made.text
    assert made.json()["source"] == "web"
    assert stack.submitted[-1].source == "web"
    by_token = await stack.http.post("/v1/predictions", json=body, headers=user.headers)
    assert by_token.json()["source"] == "api"
    # A token wins over a session cookie: that is an API client.
    both = await browser.http.post("/v1/predictions", json=body, headers=user.headers)
    assert both.json()["source"] == "api"
    invalid = await browser.api("POST", "/v1/predictions", json={"version": version, "input": {}})
    assert invalid.status_code == 422
    fields = {f["field"] for f in invalid.json()["invalid_fields"]}
    assert fields == {"input"}


# -- the API tab ---------------------------------------------------------------------------------


def test_snippets_are_runnable_code_for_the_inputs() -> None:
    inputs = {"text": 'it\'s "quoted"\n', "n": 2, "ok": True, "none": None, "tags": ["a"]}
    found = {s.key: s for s in api_snippets("https://c.example", "o/m:v1", inputs)}
    python = found["python"].code
    compile(python, "snippet", "exec")
    assert 'base_url="https://c.example"' in python
    assert '"ok": True' in python
    assert '"none": None' in python
    assert 'baseUrl: "https://c.example/v1"' in found["node"].code
    curl = found["curl"].code
    body = curl.split("-d ", 1)[1].split(" \\\n", 1)[0]
    assert body.startswith("'")
    assert json.loads(body[1:-1].replace("'\\''", "'")) == {"version": "v1", "input": inputs}
    assert found["http"].code.startswith("POST /v1/predictions HTTP/1.1\nHost: c.example\n")
    streamed = api_snippets("https://c.example", "o/m:v1", {}, streaming=True)[0].code
    assert "client.stream(" in streamed


def test_deployment_snippets_call_the_deployments_endpoint() -> None:
    found = {
        s.key: s.code for s in api_snippets("https://c.example", "o/dep", {"a": 1}, deployment=True)
    }
    compile(found["python"], "snippet", "exec")
    assert 'client.deployments.get("o/dep")' in found["python"]
    assert 'replicate.deployments.predictions.create(\n  "o",\n  "dep",' in found["node"]
    assert "https://c.example/v1/deployments/o/dep/predictions" in found["curl"]
    assert '\'{"input": {"a": 1}}\'' in found["curl"]
    assert found["http"].startswith("POST /v1/deployments/o/dep/predictions HTTP/1.1")


def test_example_inputs_fill_required_ones_and_keep_defaults() -> None:
    found = example_input(input_fields(form_schema()))
    assert found == {
        "text": "hello",
        "style": "plain",
        "width": 0,
        "temperature": 0.7,
        "suffix": "end ",
        "tags": ["a"],
        "loud": True,
        "image": "https://example.com/input.png",
    }


async def test_api_tab_points_at_the_public_url(stack: Stack) -> None:
    user = await stack.user()
    model = await stack.model(user)
    version = await stack.version(user, model, form_schema())
    browser = await stack.browser(user)
    page = await browser.get(f"/models/{model}/api")
    assert f"{model}:{version}" in page
    assert "https://cogplane.example/v1/predictions" in page
    for key in ("python", "node", "curl", "http"):
        assert f'data-copy="#snippet-{key}"' in page
        assert f'<pre id="snippet-{key}"><code>' in page


# -- versions, deployments, settings -------------------------------------------------------------


async def test_settings_save_and_deleting_shows_the_apis_refusal(stack: Stack) -> None:
    user = await stack.user()
    model = await stack.model(user, "private")
    browser = await stack.browser(user)
    page = await browser.get(f"/models/{model}/settings")
    values = {
        "description": "A fine model",
        "visibility": "private",
        "hardware": "gpu-t4",
        "github_url": "https://github.com/o/m",
        "paper_url": "javascript:alert(1)",
        "license_url": "",
        "cover_image_url": "",
    }
    saved = await browser.post(f"/models/{model}/settings", values)
    assert saved.status_code == 303
    page = await browser.get(saved.headers["location"])
    assert "Saved." in page
    head = await browser.get(f"/models/{model}")
    assert "A fine model" in head
    assert 'href="https://github.com/o/m"' in head
    assert "javascript:" not in head  # stored as given, never linked
    assert "Nvidia T4 GPU" in head
    await stack.version(user, model, form_schema())
    refused = await browser.post(f"/models/{model}/delete")
    assert refused.status_code == 409
    assert "has versions: delete them before the model" in error_of(refused.text, "delete")
    versions = await browser.get(f"/models/{model}/versions")
    version_id = re.findall(r'action="/models/[^"]+/versions/(\w+)/delete"', versions)
    assert len(version_id) == 1
    deleted = await browser.post(f"/models/{model}/versions/{version_id[0]}/delete")
    assert deleted.status_code == 303
    gone = await browser.post(f"/models/{model}/delete")
    assert gone.status_code == 303
    await browser.get(f"/models/{model}", status=404)


async def test_deployments_tab_lists_the_models_deployments(stack: Stack) -> None:
    user = await stack.user()
    model = await stack.model(user)
    version = await stack.version(user, model, form_schema())
    browser = await stack.browser(user)
    assert "No deployments of this model yet." in await browser.get(f"/models/{model}/deployments")
    name = unique("dep")
    body = {
        "name": name,
        "model": model,
        "version": version,
        "hardware": "cpu",
        "min_instances": 0,
        "max_instances": 1,
    }
    made = await stack.http.post("/v1/deployments", json=body, headers=user.headers)
    assert made.status_code == 200, made.text
    page = await browser.get(f"/models/{model}/deployments")
    assert f'href="/deployments/{user.username}/{name}"' in page
    assert "0 to 1" in page


# -- predictions ---------------------------------------------------------------------------------


async def test_prediction_page_shows_everything_and_is_404_to_others(stack: Stack) -> None:
    user, other = await stack.user(), await stack.user()
    model = await stack.model(user)
    version = await stack.version(user, model, form_schema())
    given = {"text": "hi", "api_key": "s3cret-value", "image": "https://example.com/x.png"}
    prediction = stack.prediction(user, model, version, input=given, logs="line one\n")
    stack.costs[prediction] = "0.000025"
    browser = await stack.browser(user)
    page = await browser.get(f"/p/{prediction}")
    assert f'<a href="/models/{model}">{model}</a>' in page
    assert "s3cret-value" not in page
    assert "(secret)" in page
    assert '<a href="https://example.com/x.png"' in page
    assert "line one" in page
    assert "12.5 ms" in page
    assert "$0.000025" in page
    assert "0.250 s" in page
    assert f"/models/{model}?version={version}&amp;prediction={prediction}" in page
    data = re.search(r'<script type="application/json" id="prediction-data">(.*?)</script>', page)
    assert data
    assert json.loads(data.group(1))["output"] == "ok"
    assert "input" not in json.loads(data.group(1))
    await (await stack.browser(other)).get(f"/p/{prediction}", status=404)
    await browser.get("/p/no-such-prediction", status=404)


async def test_predictions_list_filters(stack: Stack) -> None:
    user = await stack.user()
    model, second = await stack.model(user), await stack.model(user)
    version = await stack.version(user, model, form_schema())
    done = stack.prediction(user, model, version)
    failed = stack.prediction(user, model, version, status="failed", error="boom")
    web = stack.prediction(user, second, version, source="web")
    browser = await stack.browser(user)
    everything = await browser.get("/predictions")
    assert all(f"/p/{x}" in everything for x in (done, failed, web))
    only_failed = await browser.get("/predictions?status=failed")
    assert f"/p/{failed}" in only_failed
    assert f"/p/{done}" not in only_failed
    only_web = await browser.get("/predictions?source=web")
    assert f"/p/{web}" in only_web
    assert f"/p/{done}" not in only_web
    only_second = await browser.get(f"/predictions?model={second}")
    assert f"/p/{web}" in only_second
    assert f"/p/{done}" not in only_second
    nothing = await browser.get("/predictions?status=canceled&since=2001-01-01&until=garbage")
    assert "No predictions on this page match the filters." in nothing
    await browser.get("/predictions?status=nope", status=422)


# -- escaping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_every_page_escapes_user_content(stack: Stack, payload: str) -> None:
    user = await stack.user()
    links = {k: f"https://x.example/{payload}" for k in ("github_url", "paper_url")}
    model = await stack.model(user, description=payload, cover_image_url=payload, **links)
    version = await stack.version(user, model, form_schema(payload))
    given = {"text": payload, "tags": [payload], "image": f"data:text/plain,{payload}"}
    prediction = stack.prediction(
        user,
        model,
        version,
        input=given,
        output={"text": payload, "list": [payload]},
        logs=f"log {payload}\n",
        error=payload,
        status="failed",
    )
    browser = await stack.browser(user)
    pages = [
        "/models",
        f"/models/{model}",
        f"/models/{model}?prediction={prediction}",
        f"/models/{model}/api",
        f"/models/{model}/api?prediction={prediction}",
        f"/models/{model}/versions",
        f"/models/{model}/deployments",
        f"/models/{model}/settings",
        "/predictions",
        f"/p/{prediction}",
    ]
    for path in pages:
        page = await browser.get(path)
        assert_escaped(page)
    detail = await browser.get(f"/p/{prediction}")
    assert "log &lt;script&gt;" in detail or "log &#34;&gt;&lt;img" in detail
    assert "\\u003c" in detail.split('id="prediction-data">')[1]  # JSON data blocks escape <
    # Forms keep what was typed, escaped.
    typed = {"owner": user.username, "name": payload, "visibility": "public", "hardware": "cpu"}
    bad = await browser.post("/models/new", typed | {"description": payload})
    assert bad.status_code == 422
    assert_escaped(bad.text)
    settings = await browser.post(
        f"/models/{model}/settings", {"description": payload, "visibility": "nope"}
    )
    assert settings.status_code == 422
    assert_escaped(settings.text)


def test_only_http_links_are_linked() -> None:
    assert safe_url("https://x.example/a") == "https://x.example/a"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//x.example", "x", "", None):
        assert safe_url(bad) is None
