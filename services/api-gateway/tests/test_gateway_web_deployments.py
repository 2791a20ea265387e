"""The deployments and usage pages, server side: forms, refusals next to their fields, privacy,
escaping of user content, and the stand-ins' answers (scheduler, billing) shown on the pages.

The session's registry answers; the scheduler's activity check and billing's usage report are
answered by stand-ins on the session's NATS, only inside the tests that need them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from html import unescape
from pathlib import Path
from typing import Any

import httpx

from cogplane.common.bus import Bus
from cogplane.common.contracts import billing as b
from cogplane.common.contracts import deployments as d
from cogplane.common.contracts.accounts import Caller
from cogplane.common.embedded import EmbeddedNats
from cogplane.gateway.web.render import STATIC
from cogplane.gateway.web.session import COOKIE

from .conftest import Runner

NewActor = Callable[[], Awaitable[tuple[str, Caller]]]
HTML = {"Accept": "text/html"}
SCRIPT = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


class Browser:
    """A signed-in web session: its cookie and the CSRF token of its pages."""

    def __init__(self, gateway: httpx.AsyncClient, cookie: str, csrf: str) -> None:
        self.gateway = gateway
        self.cookies = {COOKIE: cookie}
        self.csrf = csrf

    @classmethod
    async def sign_in(cls, gateway: httpx.AsyncClient, token: str) -> Browser:
        gateway.cookies.clear()  # the client is shared: each session is passed explicitly
        shown = await gateway.get("/login", headers=HTML)
        nonce = re.search(r'name="nonce" value="([^"]+)"', shown.text)
        assert nonce is not None
        form = {"token": token, "nonce": nonce.group(1)}
        signed = await gateway.post("/login", data=form, headers=HTML)
        assert signed.status_code == 303, signed.text
        cookie = signed.cookies[COOKIE]
        gateway.cookies.clear()
        shown = await gateway.get("/deployments", cookies={COOKIE: cookie}, headers=HTML)
        found = CSRF.search(shown.text)
        assert found is not None
        return cls(gateway, cookie, found.group(1))

    async def get(self, path: str) -> httpx.Response:
        return await self.gateway.get(path, cookies=self.cookies, headers=HTML)

    async def post(self, path: str, data: dict[str, str], csrf: bool = True) -> httpx.Response:
        form = data | ({"csrf_token": self.csrf} if csrf else {})
        return await self.gateway.post(path, data=form, cookies=self.cookies, headers=HTML)


def field_error(page: str, name: str) -> str:
    """The error shown under a form field (empty when none)."""
    found = re.search(rf'<p id="{name}-error" class="error field-error">([^<]*)</p>', page)
    return unescape(found.group(1)) if found else ""


def form(**changes: str) -> dict[str, str]:
    values = {"name": f"dep-{uuid.uuid4().hex[:8]}", "version": "", "hardware": "cpu"}
    return values | {"min_instances": "0", "max_instances": "2"} | changes


async def model_with_version(
    gateway: httpx.AsyncClient, runner: Runner, token: str, owner: str
) -> tuple[str, str]:
    """A private model whose description is a script, and its ready version."""
    name = f"web-{uuid.uuid4().hex[:8]}"
    body = {"owner": owner, "name": name, "visibility": "private", "hardware": "cpu"}
    created = await gateway.post(
        "/v1/models",
        json=body | {"description": SCRIPT},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text
    build = await runner.release(token, f"{owner}/{name}")
    return f"{owner}/{name}", str(build["version"])


@asynccontextmanager
async def stand_in(
    nats: EmbeddedNats, name: str, rpc: Any, answer: Callable[[Any], Awaitable[Any]]
) -> AsyncIterator[None]:
    """Another service's answer to ``rpc`` on the session's NATS, while this lasts."""
    bus = Bus(nats.url, name, timedelta(seconds=5))
    await bus.connect()
    await bus.serve(rpc, answer)
    try:
        yield
    finally:
        await bus.close()


async def test_create_refusals_next_to_their_fields_then_a_deployment(
    gateway: httpx.AsyncClient, runner: Runner, new_admin: NewActor
) -> None:
    token, caller = await new_admin()
    me, org = caller.account.username, caller.organizations[0]
    model, version = await model_with_version(gateway, runner, token, me)
    web = await Browser.sign_in(gateway, token)
    empty = await web.get("/deployments")
    assert "No deployments yet" in empty.text
    new = await web.get(f"/deployments/new?model={model}")
    assert new.status_code == 200
    assert f'<option value="{model}" selected>' in new.text
    assert f'<option value="{version}"' in new.text
    assert f'<option value="{org}"' in new.text
    assert 'for="min_instances"' in new.text
    assert 'for="hardware"' in new.text
    assert "data-estimate-panel" in new.text

    tangled = await web.post("/deployments/new", form(model=model, min_instances="3"))
    assert tangled.status_code == 422
    assert "must not exceed max_instances" in field_error(tangled.text, "min_instances")
    assert 'aria-invalid="true" aria-describedby="min-hint min_instances-error"' in tangled.text
    bad_name = await web.post("/deployments/new", form(model=model, name="Bad Name"))
    assert field_error(bad_name.text, "name").startswith("Use lowercase letters")
    not_number = await web.post("/deployments/new", form(model=model, max_instances="two"))
    assert field_error(not_number.text, "max_instances") == "Enter a whole number"
    bad_version = await web.post("/deployments/new", form(model=model, version="f" * 64))
    assert "No ready version" in field_error(bad_version.text, "version")
    unknown = await web.post("/deployments/new", form(model=f"{me}/nope", hardware="gpu-x"))
    assert "not found" in field_error(unknown.text, "model")
    assert (await web.post("/deployments/new", form(model=model), csrf=False)).status_code == 403
    listed = await gateway.get("/v1/deployments", headers={"Authorization": f"Bearer {token}"})
    assert listed.json()["results"] == []

    chosen = form(model=model, owner=org)
    made = await web.post("/deployments/new", chosen)
    assert made.status_code == 303, made.text
    assert made.headers["location"] == f"/deployments/{org}/{chosen['name']}"
    again = await web.post("/deployments/new", chosen)
    assert "already exists" in field_error(again.text, "name")
    shown = await web.get("/deployments")
    assert f"{org}/{chosen['name']}" in shown.text
    page = await web.get(made.headers["location"])
    assert page.status_code == 200
    assert f'data-api="/v1/deployments/{org}/{chosen["name"]}"' in page.text
    assert version[:12] in page.text
    assert ESCAPED in page.text
    assert SCRIPT not in page.text
    # The endpoint's snippets call the deployment (the official clients' deployments API).
    assert f"/v1/deployments/{org}/{chosen['name']}/predictions" in page.text
    assert f"client.deployments.get(&#34;{org}/{chosen['name']}&#34;)" in page.text


async def test_edit_makes_releases_and_refusals_stay_on_the_page(
    gateway: httpx.AsyncClient, runner: Runner, new_admin: NewActor
) -> None:
    token, caller = await new_admin()
    me = caller.account.username
    model, first = await model_with_version(gateway, runner, token, me)
    second = str((await runner.release(token, model))["version"])
    web = await Browser.sign_in(gateway, token)
    made = await web.post("/deployments/new", form(model=model, version=first))
    path = made.headers["location"]
    page = await web.get(path)
    assert f'<option value="{second}"' in page.text
    assert "Save release #2" in page.text
    changed = {"version": second, "hardware": "gpu-t4", "min_instances": "1", "max_instances": "3"}
    released = await web.post(path, changed)
    assert released.status_code == 303
    assert released.headers["location"] == f"{path}?released=2"
    after = await web.get(released.headers["location"])
    assert "Release #2 created" in after.text
    assert "release #2" in after.text
    assert "#1" in after.text
    assert "min 1, max 3" in after.text
    assert "gpu-t4" in after.text
    refused = await web.post(path, changed | {"min_instances": "9", "hardware": "gpu-x"})
    assert refused.status_code == 422
    assert "between 0 and" in field_error(refused.text, "min_instances")
    assert "Unknown hardware" in field_error(refused.text, "hardware")
    assert 'value="9"' in refused.text  # what was typed stays in the form
    api = await gateway.get(f"/v1{path}", headers={"Authorization": f"Bearer {token}"})
    assert api.json()["current_release"]["number"] == 2


async def test_delete_says_why_not_while_in_use(
    gateway: httpx.AsyncClient, runner: Runner, new_admin: NewActor, nats_server: EmbeddedNats
) -> None:
    token, caller = await new_admin()
    model, _ = await model_with_version(gateway, runner, token, caller.account.username)
    web = await Browser.sign_in(gateway, token)
    path = (await web.post("/deployments/new", form(model=model))).headers["location"]
    activity = d.TargetActivity(instances_online=2)

    async def answer(_: d.TargetRef) -> d.TargetActivity:
        return activity

    async with stand_in(nats_server, "scheduler", d.TARGET_ACTIVITY, answer):
        busy = await web.post(f"{path}/delete", {})
        assert busy.status_code == 409
        assert re.search(r'role="alert" id="delete-error">[^<]*2 instance\(s\) online', busy.text)
        assert "<details open>" in busy.text
        assert (await web.post(f"{path}/delete", {}, csrf=False)).status_code == 403
        activity = d.TargetActivity()
        gone = await web.post(f"{path}/delete", {})
    assert gone.status_code == 303
    assert gone.headers["location"].startswith("/deployments?deleted=")
    assert (await web.get(path)).status_code == 404


async def test_deployments_of_others_are_not_found(
    gateway: httpx.AsyncClient, runner: Runner, new_admin: NewActor, new_user: NewActor
) -> None:
    token, caller = await new_admin()
    model, _ = await model_with_version(gateway, runner, token, caller.account.username)
    owner = await Browser.sign_in(gateway, token)
    path = (await owner.post("/deployments/new", form(model=model))).headers["location"]
    stranger = await Browser.sign_in(gateway, (await new_user())[0])
    for response in (
        await stranger.get(path),
        await stranger.post(path, {"min_instances": "0", "max_instances": "1"}),
        await stranger.post(f"{path}/delete", {}),
    ):
        assert response.status_code == 404
        assert "text/html" in response.headers["content-type"]
    assert path.split("/")[-1] not in (await stranger.get("/deployments")).text
    # A stranger cannot deploy the private model either: the refusal names the model field.
    refused = await stranger.post("/deployments/new", form(model=model))
    assert "not found" in field_error(refused.text, "model")
    signed_out = await gateway.get("/deployments/new", headers=HTML)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login?next=/deployments/new"


def line(seconds: str = "90.5", **keys: str | None) -> b.UsageLine:
    exact = str(Decimal(seconds) / 10000)
    cost = Decimal(exact).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return b.UsageLine(seconds=seconds, cost=str(cost), cost_exact=exact, **keys)


def report(query: b.UsageQuery) -> b.UsageReport:
    key = query.group_by[0]
    lines = {
        "day": [line(day=query.until.date().isoformat())],
        "model": [line(model=f"x/{SCRIPT}", seconds="60"), line(model="x/cheap", seconds="30.5")],
        "deployment": [line(deployment=None)],
        "hardware": [line(hardware="cpu")],
    }[key]
    return b.UsageReport(
        account=query.account,
        since=query.since,
        until=query.until,
        group_by=query.group_by,
        lines=lines,
        total_seconds="90.5",
        total_cost="0.01",
        total_cost_exact="0.00905",
    )


async def test_usage_by_day_model_deployment_and_hardware(
    gateway: httpx.AsyncClient, new_admin: NewActor, new_user: NewActor, nats_server: EmbeddedNats
) -> None:
    token, caller = await new_admin()
    org = caller.organizations[0]
    web = await Browser.sign_in(gateway, token)
    asked: list[b.UsageQuery] = []

    async def answer(query: b.UsageQuery) -> b.UsageReport:
        asked.append(query)
        return report(query)

    async with stand_in(nats_server, "billing", b.USAGE, answer):
        shown = await web.get("/usage?days=7")
        theirs = await web.get(f"/usage?account={org}")
        strangers = await web.get(f"/usage?account={(await new_user())[1].account.username}")
    assert shown.status_code == 200
    assert {q.account for q in asked} == {caller.account.username, org}
    assert sorted(q.group_by[0] for q in asked[:4]) == ["day", "deployment", "hardware", "model"]
    assert asked[0].until - asked[0].since == timedelta(days=7)
    assert theirs.status_code == 200
    assert f'<option value="{org}" selected>' in theirs.text
    assert strangers.status_code == 404
    text = shown.text
    assert 'data-total="cost">$0.01<' in text
    assert "1 min 30 s" in text
    assert "(not a deployment)" in text
    assert f"x/{ESCAPED}" in text
    assert SCRIPT not in text  # neither in the tables nor in the charts' JSON
    assert "x\\/\\u003cscript\\u003e" in text or "x/\\u003cscript\\u003e" in text
    down = await web.get("/usage")
    assert down.status_code == 503
    assert "Usage is not available right now" in down.text


def test_scripts_never_write_html() -> None:
    for name in ("deployments.js", "charts.js", "usage.js"):
        source = (Path(STATIC) / name).read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{name} uses {sink}"
