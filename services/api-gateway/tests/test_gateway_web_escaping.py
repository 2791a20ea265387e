"""A sweep of every web page: user content is escaped, the CSP is sent, forged forms change
nothing, and other accounts see nothing private.

The pages are found from the gateway's own routers (``SPEC.routers``: every GET route outside
the API, downloads, static files and service endpoints), so pages added later are swept too.
Path and query parameters are filled from a pool of things created here, by parameter name
(``owner``, ``name``, ``prediction_id``, ``version``, ...); a page that none of the fillings can
render fails the sweep, naming the parameters to add to ``Things.pool``.

Things are created with hostile text wherever the API takes free text: user and organization
names, token names, model descriptions and links (``javascript:`` ones too), a version's input
schema (titles, descriptions, choices, defaults), build logs, prediction inputs, logs, outputs
and errors. The platform is this module's own: its NATS server, and the registry, scheduler,
billing and autoscaler in process (pages may ask any of them); no runner: a prediction's run is
reported the way a runner reports it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import cogplane.autoscaler
import cogplane.billing
import cogplane.registry
import cogplane.scheduler
from cogplane.autoscaler.app import create_app as create_autoscaler
from cogplane.autoscaler.config import AutoscalerSettings
from cogplane.billing.app import create_app as create_billing
from cogplane.billing.config import BillingSettings
from cogplane.common.bus import Bus
from cogplane.common.contracts import accounts as c
from cogplane.common.contracts import models as m
from cogplane.common.contracts import predictions as p
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from cogplane.common.testing.apps import running
from cogplane.common.testing.fixtures import migrate_service
from cogplane.common.testing.wait import eventually
from cogplane.gateway.app import SPEC
from cogplane.gateway.app import create_app as create_gateway
from cogplane.gateway.config import GatewaySettings
from cogplane.gateway.web.errors import API_PREFIXES
from cogplane.registry.app import create_app as create_registry
from cogplane.registry.bootstrap import bootstrap
from cogplane.registry.config import RegistrySettings
from cogplane.scheduler.app import create_app as create_scheduler
from cogplane.scheduler.config import SchedulerSettings

HTML = {"Accept": "text/html"}
# Breaks out of text, of both kinds of quoted attributes and of JSON strings, if not escaped.
PROBE = "xss-probe"
HOSTILE = f"\"'></textarea></script><script>alert(1)</script><img src=x onerror=alert(2)><{PROBE}>"
SHORT_HOSTILE = f"\"'><script>alert(1)</script><{PROBE}>"  # where 100 characters is the limit
JS_URL = "javascript:alert(3)"
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "poster", "cite", "background", "data"}
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
UNIQUE = uuid.uuid4().hex[:8]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- what counts as an injection ---------------------------------------------------------------


class Injections(HTMLParser):
    """Whatever in a page came from content instead of the template (or breaks the CSP)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.json_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == PROBE:
            self.found.append(f"<{PROBE}> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…> event handler attribute")
            elif name == "style":
                self.found.append(f"<{tag} style=…> inline style (the CSP blocks it)")
            elif name in URL_ATTRIBUTES and value is not None:
                squeezed = re.sub(r"[\s\x00-\x1f]", "", value).lower()
                if squeezed.startswith(("javascript:", "vbscript:", "data:text/html")):
                    self.found.append(f"<{tag} {name}={value!r}> script URL")
        if tag == "script":
            kinds = dict(attrs)
            self.json_script = kinds.get("type") == "application/json"
            if not self.json_script and not kinds.get("src"):
                self.found.append("inline <script> (injected, or blocked by the CSP)")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.json_script = False

    def handle_data(self, data: str) -> None:
        if self.json_script and data.strip():
            try:
                json.loads(data)
            except ValueError:
                self.found.append(f"<script type=application/json> that is not JSON: {data[:80]!r}")


def injections(body: str) -> list[str]:
    parser = Injections()
    parser.feed(body)
    parser.close()
    return parser.found


def test_the_detector_finds_what_it_should() -> None:
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert (
        injections(f'<p title="{escaped}">{escaped}</p><script src="/static/a.js"></script>') == []
    )
    assert injections(f"<p>{HOSTILE}</p>")
    assert injections(f'<input value="{HOSTILE}">')
    assert injections(f"<input value='{HOSTILE}'>")
    assert injections(f'<a href="{JS_URL}">x</a>')
    assert injections('<a href=" JaVa\tScRiPt:alert(1)">x</a>')
    assert injections('<script type="application/json">{"a": "</script><script>x()</script>')
    assert injections('<div style="color: red">x</div>')


# -- the platform and the things on it ---------------------------------------------------------


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(Path(tmp_path_factory.mktemp("web-sweep-nats")) / "nats", free_port())
    server.start()
    yield server
    server.stop()


@dataclass
class Platform:
    app: FastAPI
    bus: Bus
    engine: AsyncEngine
    registry: RegistrySettings


@pytest.fixture(scope="module")
def migrated(postgres: EmbeddedPostgres, migrated_schemas: set[str]) -> EmbeddedPostgres:
    """The session's PostgreSQL with the schemas of every service started here."""
    for package, schema in (
        (cogplane.registry, "registry"),
        (cogplane.scheduler, "scheduler"),
        (cogplane.billing, "billing"),
        (cogplane.autoscaler, "autoscaler"),
    ):
        migrate_service(postgres, migrated_schemas, str(package.__file__), schema)
    return postgres


@pytest.fixture(scope="module")
async def platform(migrated: EmbeddedPostgres, own_nats: EmbeddedNats) -> AsyncIterator[Platform]:
    postgres = migrated
    urls: dict[str, Any] = {"database_url": postgres.url, "nats_url": own_nats.url, "port": 0}
    registry = RegistrySettings(**urls)
    gateway = create_gateway(GatewaySettings(**urls))
    engine = create_async_engine(postgres.url)
    bus = Bus(own_nats.url, "web-sweep", timedelta(seconds=10))
    async with (
        running(create_registry(registry)),
        running(create_scheduler(SchedulerSettings(**urls))),
        running(create_billing(BillingSettings(**urls))),
        running(create_autoscaler(AutoscalerSettings(**urls))),
        running(gateway),
    ):
        await bus.connect()
        yield Platform(gateway, bus, engine, registry)
        await bus.close()
    await engine.dispose()


class Browser:
    """One signed-in browser: its cookie jar and the CSRF token of its latest page."""

    def __init__(self, app: FastAPI, token: str) -> None:
        self.token = token
        transport = httpx.ASGITransport(app=app)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.api = httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {token}"},
        )
        self.csrf = ""

    async def sign_in(self) -> None:
        shown = await self.http.get("/login", headers=HTML)
        nonce = re.search(r'name="nonce" value="([^"]+)"', shown.text)
        assert nonce is not None  # the sign-in form's guard against login CSRF
        data = {"token": self.token, "nonce": nonce.group(1)}
        signed = await self.http.post("/login", data=data, headers=HTML)
        assert signed.status_code == 303, signed.text
        await self.get("/account")
        assert self.csrf

    async def get(self, url: str) -> httpx.Response:
        response = await self.http.get(url, headers=HTML)
        if found := CSRF.search(response.text):
            self.csrf = found.group(1)
        return response

    async def close(self) -> None:
        await self.http.aclose()
        await self.api.aclose()


@dataclass
class Things:
    """Alice's private things (hostile text wherever it is free), Bob in her organization, and
    Eve, who belongs to nothing of theirs and has a private model of her own."""

    alice: Browser
    bob: Browser
    eve: Browser
    users: dict[str, str]
    org: str
    models: list[str]
    version: str
    deployment: str
    predictions: list[str]
    token_id: str
    eve_model: str
    # Text only Alice's pages may contain: Eve must never see any of it.
    secrets: list[str] = field(default_factory=list)

    def pool(self) -> dict[str, list[str]]:
        """Values for path and query parameters, by parameter name."""
        owners = [self.users["alice"], self.org]
        names = [model.split("/")[1] for model in self.models] + [self.deployment]
        return {
            "owner": owners,
            "account": owners,
            "organization": [self.org],
            "username": [self.users["bob"]],
            "name": names,
            "model": self.models,
            "version": [self.version],
            "version_id": [self.version],
            "prediction": self.predictions,
            "prediction_id": self.predictions,
            "token_id": [self.token_id],
            "status": ["succeeded"],
            "source": ["api"],
        }


def schema(secret: str) -> dict[str, Any]:
    """A version's OpenAPI schema with hostile text in every place a form shows."""
    return {
        "openapi": "3.0.2",
        "info": {"title": HOSTILE, "version": "0.1.0"},
        "components": {
            "schemas": {
                "Input": {
                    "type": "object",
                    "title": "Input",
                    "required": ["text"],
                    "properties": {
                        "text": {
                            "type": "string",
                            "title": HOSTILE,
                            "description": f"{HOSTILE} {secret}",
                            "default": HOSTILE,
                            "x-order": 0,
                        },
                        "choice": {
                            "allOf": [{"$ref": "#/components/schemas/choice"}],
                            "x-order": 1,
                        },
                        "link": {"type": "string", "format": "uri", "x-order": 2},
                        "secret": {"type": "string", "format": "password", "x-order": 3},
                    },
                },
                "choice": {"title": "choice", "enum": [HOSTILE, "plain"], "type": "string"},
                "Output": {"type": "string", "title": HOSTILE},
            }
        },
    }


async def new_user(platform: Platform, admin: c.Caller, label: str) -> Browser:
    """A plain user with a hostile display name and token name, signed in."""
    create = c.CreateUser(
        account_id=admin.account.id, username=unique(label), name=f"{label} {HOSTILE}"
    )
    account = await platform.bus.request(c.CREATE_USER, create)
    made = c.CreateToken(account_id=account.id, name=f"{SHORT_HOSTILE} {label}-secret-{UNIQUE}")
    token = (await platform.bus.request(c.CREATE_TOKEN, made)).token
    browser = Browser(platform.app, token)
    await browser.sign_in()
    return browser


async def ready_version(platform: Platform, viewer: m.Viewer, model: str, secret: str) -> str:
    """A ready version of ``model`` with a hostile schema and build logs, as a runner reports."""
    owner, name = model.split("/")
    start = m.StartBuild(viewer=viewer, owner=owner, name=name, source_object=unique("s"), size=1)
    build = await platform.bus.request(m.START_BUILD, start)
    await platform.bus.publish(m.BuildLogged(build_id=build.id, seq=0, text=f"{HOSTILE}\n"))
    version = m.BuiltVersion(
        id=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
        cog_version="0.16.0",
        openapi_schema=schema(secret),
        python_version="3.11",
        predict="predict.py:Predictor",
        env_key="e" * 64,
        source_digest="s" * 64,
    )
    await platform.bus.publish(m.BuildFinished(build_id=build.id, version=version))

    async def ready() -> bool:
        ref = m.BuildRef(viewer=viewer, build_id=build.id)
        return (await platform.bus.request(m.GET_BUILD, ref)).status == "ready"

    await eventually(ready, timeout=10)
    return version.id


async def create_model(browser: Browser, owner: str, description: str) -> str:
    name = unique("model")
    body = {
        "owner": owner,
        "name": name,
        "visibility": "private",
        "hardware": "cpu",
        "description": description,
        "github_url": JS_URL,
        "paper_url": f"https://example.com/{HOSTILE}",
        "license_url": JS_URL,
        "cover_image_url": JS_URL,
    }
    made = await browser.api.post("/v1/models", json=body)
    assert made.status_code == 201, made.text
    return f"{owner}/{name}"


async def run(platform: Platform, prediction_id: str, *reports: dict[str, Any]) -> None:
    """Report a prediction's run as a runner would, from an instance made up here."""
    instance = unique("instance")
    async with platform.engine.begin() as conn:
        await conn.execute(
            text("UPDATE scheduler.predictions SET instance_id = :i WHERE id = :p"),
            {"i": instance, "p": prediction_id},
        )
    for seq, report in enumerate(reports):
        event = p.PredictionUpdated(
            prediction_id=prediction_id, instance_id=instance, seq=seq, **report
        )
        await platform.bus.publish(event)


async def predict(browser: Browser, version: str, secret: str) -> str:
    body = {"version": version, "input": {"text": f"{HOSTILE} {secret}", "choice": HOSTILE}}
    made = await browser.api.post("/v1/predictions", json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def settled(browser: Browser, prediction_id: str, status: str) -> None:
    async def done() -> bool:
        found = await browser.api.get(f"/v1/predictions/{prediction_id}")
        return bool(found.json()["status"] == status)

    await eventually(done, timeout=10)


@pytest.fixture(scope="module")
async def things(platform: Platform) -> AsyncIterator[Things]:
    admin_token = str((await bootstrap(platform.registry, unique("admin"), unique("org")))["token"])
    admin = await platform.bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=admin_token))
    alice, bob, eve = [await new_user(platform, admin, who) for who in ("alice", "bob", "eve")]
    me = (await alice.api.get("/v1/account")).json()["username"]
    users = {"alice": me, "bob": (await bob.api.get("/v1/account")).json()["username"]}
    secrets = [f"{kind}-secret-{UNIQUE}" for kind in ("desc", "schema", "input", "logs", "out")]
    secrets += [f"org-secret-{UNIQUE}", f"alice-secret-{UNIQUE}"]
    org = unique("org")
    made = await alice.api.post(
        "/v1/organizations", json={"username": org, "name": f"{HOSTILE} {secrets[5]}"}
    )
    assert made.status_code == 201, made.text
    added = await alice.api.post(
        f"/v1/organizations/{org}/members", json={"username": users["bob"]}
    )
    assert added.status_code == 201, added.text
    models = [
        await create_model(alice, me, f"{HOSTILE} {secrets[0]}"),
        await create_model(alice, org, f"{HOSTILE} {secrets[0]}"),
    ]
    caller = await platform.bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=alice.token))
    viewer = m.Viewer(account_id=caller.account.id, username=me, organizations=caller.organizations)
    version = await ready_version(platform, viewer, models[0], secrets[1])
    await ready_version(platform, viewer, models[1], secrets[1])
    deployment = unique("dep")
    deployed = await alice.api.post(
        "/v1/deployments",
        json={
            "name": deployment,
            "model": models[0],
            "version": version,
            "hardware": "cpu",
            "min_instances": 0,
            "max_instances": 1,
        },
    )
    assert deployed.status_code in (200, 201), deployed.text
    succeeded = await predict(alice, version, secrets[2])
    await run(
        platform,
        succeeded,
        {"status": "processing", "logs": f"{HOSTILE} {secrets[3]}\n", "output": [HOSTILE]},
        {
            "status": "succeeded",
            "logs": f"{HOSTILE} {secrets[3]}\n",
            "output": f"{HOSTILE} {secrets[4]}",
        },
    )
    failed = await predict(alice, version, secrets[2])
    await run(platform, failed, {"status": "failed", "error": f"{HOSTILE} {secrets[4]}"})
    structured = await predict(alice, version, secrets[2])
    output = {HOSTILE: [HOSTILE, JS_URL], "url": JS_URL, "n": 1}
    await run(platform, structured, {"status": "succeeded", "output": output})
    starting = await predict(alice, version, secrets[2])  # stays queued: no runner here
    for prediction, status in ((succeeded, "succeeded"), (failed, "failed")):
        await settled(alice, prediction, status)
    tokens = (await alice.api.get("/v1/tokens")).json()["results"]
    eve_model = await create_model(eve, (await eve.api.get("/v1/account")).json()["username"], "")
    eve_caller = await platform.bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=eve.token))
    await ready_version(
        platform,
        m.Viewer(account_id=eve_caller.account.id, username=eve_caller.account.username),
        eve_model,
        "eve",
    )
    yield Things(
        alice=alice,
        bob=bob,
        eve=eve,
        users=users,
        org=org,
        models=models,
        version=version,
        deployment=deployment,
        predictions=[succeeded, failed, structured, starting],
        token_id=tokens[0]["id"],
        eve_model=eve_model,
        secrets=secrets,
    )
    for browser in (alice, bob, eve):
        await browser.close()


# -- the pages ---------------------------------------------------------------------------------


def web_routes(method: str) -> list[APIRoute]:
    """The gateway's web routes for ``method`` (not the API, downloads or service endpoints)."""
    found = []
    for router in SPEC.routers:
        for route in router.routes:
            if not isinstance(route, APIRoute) or method not in (route.methods or set()):
                continue
            if route.path.startswith(API_PREFIXES) or route.path == "/nats-handlers":
                continue
            found.append(route)
    return found


def fillings(route: APIRoute, pool: dict[str, list[str]]) -> list[str]:
    """The route's URL with its path parameters filled every way the pool allows (capped)."""
    names = [param.name for param in route.dependant.path_params]
    everything = sorted({value for values in pool.values() for value in values})
    choices = [pool.get(name, everything) for name in names]
    urls = []
    for values in itertools.islice(itertools.product(*choices), 64):
        url = route.path
        for name, value in zip(names, values, strict=True):
            url = url.replace(f"{{{name}}}", quote(value, safe=""))
        urls.append(url)
    return urls


def with_query(url: str, route: APIRoute, pool: dict[str, list[str]], hostile: bool) -> str:
    names = [param.name for param in route.dependant.query_params]
    values = {
        name: HOSTILE if hostile else pool[name][0] for name in names if hostile or name in pool
    }
    return f"{url}?{urlencode(values)}" if values else url


def hostile_path(route: APIRoute) -> str:
    url = route.path
    for param in route.dependant.path_params:
        url = url.replace(f"{{{param.name}}}", quote(HOSTILE, safe=""))
    return url


@dataclass
class Seen:
    url: str
    status: int
    body: str
    headers: httpx.Headers


async def visit(browser: Browser, url: str) -> Seen:
    response = await browser.get(url)
    return Seen(url, response.status_code, response.text, response.headers)


async def sweep(browser: Browser, things: Things) -> dict[str, list[Seen]]:
    """Every page as ``browser`` sees it: each route's fillings, with and without its query
    parameters, with hostile query values, and with hostile path values."""
    pool = things.pool()
    seen: dict[str, list[Seen]] = {}
    for route in web_routes("GET"):
        urls = []
        for url in fillings(route, pool):
            urls += [url, with_query(url, route, pool, hostile=False)]
        urls.append(with_query(urls[0], route, pool, hostile=True))
        if route.dependant.path_params:
            urls.append(hostile_path(route))
        seen[route.path] = [await visit(browser, url) for url in dict.fromkeys(urls)]
    return seen


@pytest.fixture(scope="module")
async def alices_view(things: Things) -> dict[str, list[Seen]]:
    return await sweep(things.alice, things)


def html_pages(seen: dict[str, list[Seen]]) -> Iterator[Seen]:
    for pages in seen.values():
        for page in pages:
            if "text/html" in page.headers.get("content-type", ""):
                yield page


async def test_every_page_renders_for_its_owner(alices_view: dict[str, list[Seen]]) -> None:
    unrendered = []
    for path, pages in alices_view.items():
        rendered = [
            page
            for page in pages
            if page.status == 200
            or (page.status in (302, 303) and "/login" not in page.headers["location"])
        ]
        if not rendered:
            statuses = {page.url: page.status for page in pages}
            unrendered.append(f"{path}: {statuses} (add its parameters to Things.pool?)")
        broken = [f"{page.url} -> {page.status}" for page in pages if page.status >= 500]
        assert not broken, broken
    assert not unrendered, unrendered


async def test_every_page_escapes_user_content(alices_view: dict[str, list[Seen]]) -> None:
    found = {page.url: injections(page.body) for page in html_pages(alices_view)}
    assert {url: problems for url, problems in found.items() if problems} == {}
    # The hostile text did reach the pages (escaped), so the sweep did test something.
    shown = [page for page in html_pages(alices_view) if "&lt;script&gt;alert(1)" in page.body]
    assert len(shown) >= 5, [page.url for page in shown]


async def test_every_page_sends_the_csp(alices_view: dict[str, list[Seen]]) -> None:
    for page in html_pages(alices_view):
        policy = page.headers.get("content-security-policy", "")
        assert "default-src 'self'" in policy, page.url
        assert "script-src 'self';" in policy, page.url
        assert "unsafe-inline" not in policy, page.url
        assert "frame-ancestors 'none'" in policy, page.url
        assert page.headers.get("x-content-type-options") == "nosniff", page.url


async def test_other_accounts_see_nothing_private(
    things: Things, alices_view: dict[str, list[Seen]]
) -> None:
    eves_view = await sweep(things.eve, things)
    leaks = {
        page.url: [secret for secret in things.secrets if secret in page.body]
        for page in html_pages(eves_view)
    }
    assert {url: found for url, found in leaks.items() if found} == {}
    # A page of one of Alice's things is not found for Eve, as in the API (not 403: no hint).
    for path, pages in alices_view.items():
        eves = {page.url: page for page in eves_view[path]}
        for page in pages:
            if page.status == 200 and "{" in path:
                assert eves[page.url].status == 404, (page.url, eves[page.url].status)
    # Eve's own model page, asked about Alice's prediction and version, shows none of them.
    owner, name = things.eve_model.split("/")
    for query in (f"prediction={things.predictions[0]}", f"version={things.version}"):
        for tab in ("", "/api"):
            shown = await things.eve.get(f"/models/{owner}/{name}{tab}?{query}")
            assert shown.status_code < 500, (query, shown.status_code)
            assert not [secret for secret in things.secrets if secret in shown.text], query


async def test_members_of_an_organization_see_its_things(things: Things) -> None:
    owner, name = things.models[1].split("/")
    page = await things.bob.get(f"/models/{owner}/{name}")
    assert page.status_code == 200
    assert f"desc-secret-{UNIQUE}" in page.text


# -- forms -------------------------------------------------------------------------------------


async def state(browser: Browser, things: Things) -> dict[str, Any]:
    """What a forged form could change, as the API shows it to Alice."""
    api = browser.api
    models = {}
    for model in things.models:
        found = (await api.get(f"/v1/models/{model}")).json()
        versions = (await api.get(f"/v1/models/{model}/versions")).json()["results"]
        models[model] = (
            found.get("visibility"),
            found.get("description"),
            found.get("hardware"),
            sorted(v["id"] for v in versions),
        )
    deployment = await api.get(f"/v1/deployments/{things.users['alice']}/{things.deployment}")
    predictions = (await api.get("/v1/predictions")).json()["results"]
    members = (await api.get(f"/v1/organizations/{things.org}/members")).json()["results"]
    return {
        "models": models,
        "mine": sorted(x["name"] for x in (await api.get("/v1/models")).json()["results"]),
        "deployment": (deployment.status_code, deployment.json().get("current_release")),
        "deployments": len((await api.get("/v1/deployments")).json()["results"]),
        "predictions": sorted((x["id"], x["status"]) for x in predictions),
        "tokens": sorted(t["id"] for t in (await api.get("/v1/tokens")).json()["results"]),
        "organizations": (await api.get("/v1/organizations")).json(),
        "members": sorted((x["account"]["username"], x["role"]) for x in members),
    }


def form_fields(route: APIRoute) -> dict[str, str]:
    """Plausible values for the form fields a route declares (most read the form themselves)."""
    values = {}
    for param in route.dependant.body_params:
        kind = getattr(param.field_info, "annotation", None)
        values[param.alias] = "1" if kind in (int, float) else "x"
    return values


async def test_every_form_refuses_a_missing_or_wrong_csrf_token(things: Things) -> None:
    """Forms of a signed-in user (not the sign-in forms themselves): 403, and nothing changes."""
    alice, pool = things.alice, things.pool()
    await alice.get("/account")
    before = await state(alice, things)
    routes = [r for r in web_routes("POST") if r.path not in ("/login", "/login/dev")]
    assert {"/logout", "/account/tokens"} <= {r.path for r in routes}
    wrong = ["", "forged", alice.csrf[:-2] + "xx", things.bob.csrf]
    for route in routes:
        statuses = set()
        base = {**form_fields(route), "confirm": "yes", "name": "forged"}
        for url in fillings(route, pool):
            for csrf in (None, *wrong):
                body = base if csrf is None else {**base, "csrf_token": csrf}
                response = await alice.http.post(url, data=body, headers=HTML)
                assert response.status_code in (403, 404), (url, csrf, response.status_code)
                assert "set-cookie" not in response.headers, url
                statuses.add(response.status_code)
        assert 403 in statuses, f"{route.path}: never reached its CSRF check"
    assert await state(alice, things) == before
    assert (await alice.get("/account")).status_code == 200  # still signed in


async def test_forms_posted_from_another_site_with_json_are_refused(things: Things) -> None:
    """A form post needs the url-encoded body a form sends, with the CSRF token inside."""
    alice = things.alice
    before = await state(alice, things)
    forged = await alice.http.post(
        "/account/tokens",
        json={"name": "forged", "csrf_token": alice.csrf},
        headers=HTML,
    )
    assert forged.status_code in (403, 415, 422)
    assert await state(alice, things) == before
