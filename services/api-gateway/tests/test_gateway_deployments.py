"""``/v1/deployments`` through the gateway, with HTTP and the official ``replicate`` client (1.0.7).

The module runs a registry and a gateway on its own NATS server, with a stand-in for the
scheduler: it hands out the stream key, records each ``SubmitPrediction`` (so a test sees the
deployment a prediction was placed on) and, inside ``scheduler_says``, answers how busy a
deployment is. Nothing else in the session can answer in its place.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import replicate
from replicate.exceptions import ReplicateError

import cogplane.registry
from cogplane.common.bus import Bus
from cogplane.common.contracts import accounts as c
from cogplane.common.contracts import deployments as d
from cogplane.common.contracts import models as m
from cogplane.common.contracts import predictions as p
from cogplane.common.contracts.base import Empty, new_id
from cogplane.common.contracts.webhooks import GET_STREAM_KEY, StreamKey
from cogplane.common.db import utcnow
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from cogplane.common.testing.apps import running
from cogplane.common.testing.fixtures import migrate_service
from cogplane.common.testing.served import served
from cogplane.common.testing.wait import eventually
from cogplane.gateway.app import create_app as create_gateway
from cogplane.gateway.config import GatewaySettings
from cogplane.registry.app import create_app as create_registry
from cogplane.registry.bootstrap import bootstrap
from cogplane.registry.config import RegistrySettings
from cogplane.registry.models import SCHEMA

SCHEMA_WITH_TEXT = {
    "openapi": "3.0.2",
    "components": {
        "schemas": {
            "Input": {
                "type": "object",
                "properties": {"text": {"type": "string"}, "steps": {"type": "integer"}},
                "required": ["text"],
            },
            "Output": {"type": "string"},
        }
    },
}
RELEASE_FIELDS = {"number", "model", "version", "created_at", "created_by", "configuration"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class User:
    token: str
    caller: c.Caller

    @property
    def username(self) -> str:
        return self.caller.account.username

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def viewer(self, *organizations: str) -> m.Viewer:
        return m.Viewer(
            account_id=self.caller.account.id,
            username=self.username,
            organizations=[*self.caller.organizations, *organizations],
        )

    def client(self, url: str) -> replicate.Client:
        return replicate.Client(api_token=self.token, base_url=url)


@dataclass
class Stack:
    url: str
    http: httpx.AsyncClient
    bus: Bus
    registry: RegistrySettings
    submitted: list[p.SubmitPrediction] = field(default_factory=list)
    finished: bool = False  # whether the stand-in admits predictions as already succeeded

    async def user(self) -> User:
        result = await bootstrap(self.registry, unique("admin"), unique("org"))
        token = str(result["token"])
        return User(token, await self.bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=token)))

    async def model(self, user: User, visibility: str = "private") -> str:
        body = {"owner": user.username, "name": unique("model"), "visibility": visibility}
        response = await self.http.post(
            "/v1/models", json=body | {"hardware": "cpu"}, headers=user.headers
        )
        assert response.status_code == 201, response.text
        return f"{user.username}/{body['name']}"

    async def version(self, user: User, model: str) -> str:
        """A ready version of ``model``, reported as a runner would."""
        owner, name = model.split("/")
        start = m.StartBuild(
            viewer=user.viewer(), owner=owner, name=name, source_object=unique("s"), size=1
        )
        build = await self.bus.request(m.START_BUILD, start)
        version = m.BuiltVersion(
            id=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
            cog_version="0.13.7",
            openapi_schema=SCHEMA_WITH_TEXT,
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

    async def deploy(self, user: User, model: str, version: str, **changes: Any) -> dict[str, Any]:
        body = {
            "name": unique("dep"),
            "model": model,
            "version": version,
            "hardware": "cpu",
            "min_instances": 0,
            "max_instances": 2,
        }
        response = await self.http.post(
            "/v1/deployments", json=body | changes, headers=user.headers
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    @asynccontextmanager
    async def scheduler_says(self, activity: d.TargetActivity) -> AsyncIterator[None]:
        """The scheduler's answer about a deployment's activity, for as long as this lasts."""
        stand_in = Bus(self.bus.url, "scheduler", timedelta(seconds=5))
        await stand_in.connect()

        async def answer(_: d.TargetRef) -> d.TargetActivity:
            return activity

        await stand_in.serve(d.TARGET_ACTIVITY, answer)
        try:
            yield
        finally:
            await stand_in.close()

    def admit(self, request: p.SubmitPrediction) -> p.PredictionRecord:
        self.submitted.append(request)
        spec = request.version
        return p.PredictionRecord(
            id=new_id(),
            owner_account_id=request.viewer.account_id,
            owner=request.viewer.username,
            model=f"{spec.owner}/{spec.name}",
            version=spec.version_id,
            target=request.deployment.target if request.deployment else spec.target,
            input=request.input,
            status="succeeded" if self.finished else "starting",
            output="done" if self.finished else None,
            created_at=utcnow(),
            completed_at=utcnow() if self.finished else None,
            webhook=request.webhook,
            webhook_events_filter=request.webhook_events_filter,
        )


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(Path(tmp_path_factory.mktemp("deploy-nats")) / "nats", free_port())
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
    gateway = create_gateway(
        GatewaySettings(database_url=postgres.url, nats_url=own_nats.url, port=0)
    )
    bus = Bus(own_nats.url, "deployment-tests", timedelta(seconds=5))
    scheduler = Bus(own_nats.url, "scheduler", timedelta(seconds=5))
    async with (
        running(create_registry(own_registry_settings)),
        served(gateway, lifespan=True) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        await asyncio.wait_for(gateway.state.runtime.started.wait(), 30)
        await bus.connect()
        await scheduler.connect()
        stack = Stack(url, http, bus, own_registry_settings)

        async def stream_key(_: Empty) -> StreamKey:
            return StreamKey(key=base64.b64encode(b"k" * 32).decode())

        async def submit(request: p.SubmitPrediction) -> p.PredictionRecord:
            return stack.admit(request)

        await scheduler.serve(GET_STREAM_KEY, stream_key)
        await scheduler.serve(p.SUBMIT_PREDICTION, submit)
        yield stack
        await scheduler.close()
        await bus.close()


@dataclass
class Deployed:
    """A user, their private model with two ready versions, and a deployment of the first."""

    user: User
    model: str
    versions: tuple[str, str]
    deployment: dict[str, Any]

    @property
    def path(self) -> str:
        return f"/v1/deployments/{self.deployment['owner']}/{self.deployment['name']}"


async def deployed(stack: Stack, **changes: Any) -> Deployed:
    user = await stack.user()
    model = await stack.model(user)
    versions = (await stack.version(user, model), await stack.version(user, model))
    deployment = await stack.deploy(user, model, versions[0], **changes)
    return Deployed(user, model, versions, deployment)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["detail"]
    return problem


def invalid_fields(response: httpx.Response) -> list[str]:
    problem = assert_problem(response, 422)
    assert problem["title"] == "Input validation failed"
    return [f["field"] for f in problem["invalid_fields"]]


# -- the resource --------------------------------------------------------------------------------


async def test_a_deployment_in_replicates_shape(stack: Stack) -> None:
    it = await deployed(stack, min_instances=1, max_instances=3)
    body = it.deployment

    assert set(body) == {"owner", "name", "current_release"}
    assert body["owner"] == it.user.username
    release = body["current_release"]
    assert set(release) == RELEASE_FIELDS
    assert (release["number"], release["model"], release["version"]) == (
        1,
        it.model,
        it.versions[0],
    )
    assert release["created_at"].endswith("Z")
    assert release["created_by"] == {
        "type": "user",
        "username": it.user.username,
        "name": it.user.caller.account.name,
        "github_url": None,
    }
    assert release["configuration"] == {"hardware": "cpu", "min_instances": 1, "max_instances": 3}
    got = await stack.http.get(it.path, headers=it.user.headers)
    assert got.status_code == 200
    assert got.json() == body
    listed = await stack.http.get("/v1/deployments", headers=it.user.headers)
    assert listed.json() == {"next": None, "previous": None, "results": [body]}


async def test_patch_makes_numbered_releases(stack: Stack) -> None:
    it = await deployed(stack)

    first = await stack.http.patch(it.path, json={"max_instances": 4}, headers=it.user.headers)
    second = await stack.http.patch(
        it.path, json={"version": it.versions[1], "hardware": "gpu-t4"}, headers=it.user.headers
    )

    assert first.status_code == 200, first.text
    assert first.json()["current_release"]["number"] == 2
    assert second.json()["current_release"]["number"] == 3
    assert second.json()["current_release"]["version"] == it.versions[1]
    assert second.json()["current_release"]["configuration"] == {
        "hardware": "gpu-t4",
        "min_instances": 0,
        "max_instances": 4,
    }
    releases = await stack.http.get(f"{it.path}/releases", headers=it.user.headers)
    assert releases.status_code == 200, releases.text
    assert releases.json()["next"] is None
    assert [r["number"] for r in releases.json()["results"]] == [3, 2, 1]
    assert set(releases.json()["results"][0]) == RELEASE_FIELDS
    assert releases.json()["results"][0] == second.json()["current_release"]


async def test_the_registry_rules_come_back_as_problems(stack: Stack) -> None:
    it = await deployed(stack)
    headers = it.user.headers
    base = {"model": it.model, "version": it.versions[0], "hardware": "cpu"}
    limits = {"min_instances": 0, "max_instances": 1}

    taken = await stack.http.post(
        "/v1/deployments", json=base | limits | {"name": it.deployment["name"]}, headers=headers
    )
    assert assert_problem(taken, 409)["title"] == "Conflict"
    missing = await stack.http.post(
        "/v1/deployments",
        json=base | limits | {"name": unique("d"), "model": f"{it.user.username}/nope"},
        headers=headers,
    )
    assert_problem(missing, 404)
    wrong = await stack.http.post(
        "/v1/deployments",
        json=base
        | {"name": unique("d"), "version": "0" * 64, "hardware": "gpu-x"}
        | {"min_instances": 6, "max_instances": 21},
        headers=headers,
    )
    assert invalid_fields(wrong) == ["version", "hardware", "min_instances", "max_instances"]
    lowered = await stack.http.patch(it.path, json={"max_instances": 0}, headers=headers)
    assert invalid_fields(lowered) == ["max_instances"]
    empty = await stack.http.patch(it.path, json={}, headers=headers)
    assert invalid_fields(empty) == ["body"]
    listed = await stack.http.get("/v1/deployments", headers=headers)
    assert [r["current_release"]["number"] for r in listed.json()["results"]] == [1]


async def test_organizations_own_deployments_and_outsiders_see_nothing(stack: Stack) -> None:
    it = await deployed(stack)
    org = it.user.caller.organizations[0]
    outsider = await stack.user()
    public = await stack.model(it.user, "public")
    version = await stack.version(it.user, public)

    theirs = await stack.deploy(it.user, public, version, owner=org)
    assert theirs["owner"] == org
    assert theirs["current_release"]["created_by"]["username"] == it.user.username
    listed = await stack.http.get("/v1/deployments", headers=it.user.headers)
    assert [r["name"] for r in listed.json()["results"]] == [
        theirs["name"],
        it.deployment["name"],
    ]

    refused = await stack.http.post(
        "/v1/deployments",
        json={
            "name": unique("d"),
            "model": public,
            "version": version,
            "hardware": "cpu",
            "min_instances": 0,
            "max_instances": 1,
            "owner": org,
        },
        headers=outsider.headers,
    )
    assert_problem(refused, 403)
    for path in (it.path, f"/v1/deployments/{org}/{theirs['name']}"):
        for method, suffix, body in [
            ("GET", "", None),
            ("PATCH", "", {"max_instances": 3}),
            ("DELETE", "", None),
            ("GET", "/releases", None),
            ("POST", "/predictions", {"input": {"text": "x"}}),
        ]:
            response = await stack.http.request(
                method, path + suffix, json=body, headers=outsider.headers
            )
            assert_problem(response, 404)
    nothing = await stack.http.get("/v1/deployments", headers=outsider.headers)
    assert nothing.json()["results"] == []


async def test_delete_asks_the_scheduler_first(stack: Stack) -> None:
    it = await deployed(stack)

    busy = d.TargetActivity(instances_online=1, inflight=2)
    async with stack.scheduler_says(busy):
        refused = await stack.http.delete(it.path, headers=it.user.headers)
    problem = assert_problem(refused, 409)
    assert "1 instance(s) online" in problem["detail"]
    assert "2 prediction(s) running" in problem["detail"]

    unanswered = await stack.http.delete(it.path, headers=it.user.headers)
    assert_problem(unanswered, 503)
    assert (await stack.http.get(it.path, headers=it.user.headers)).status_code == 200

    async with stack.scheduler_says(d.TargetActivity()):
        deleted = await stack.http.delete(it.path, headers=it.user.headers)
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert_problem(await stack.http.get(it.path, headers=it.user.headers), 404)


# -- predictions on a deployment -----------------------------------------------------------------


async def test_a_prediction_is_placed_on_the_deployment(stack: Stack) -> None:
    it = await deployed(stack, hardware="cpu")
    await stack.http.patch(
        it.path,
        json={"version": it.versions[1], "hardware": "gpu-t4", "max_instances": 5},
        headers=it.user.headers,
    )
    before = len(stack.submitted)

    response = await stack.http.post(
        f"{it.path}/predictions",
        json={
            "input": {"text": "hello", "steps": 3},
            "webhook": "https://example.com/hook",
            "webhook_events_filter": ["start", "completed"],
        },
        headers=it.user.headers | {"Cancel-After": "30s"},
    )

    assert response.status_code == 201, response.text
    out = response.json()
    assert (out["status"], out["model"], out["version"]) == ("starting", it.model, it.versions[1])
    assert out["input"] == {"text": "hello", "steps": 3}
    assert response.headers["location"] == f"{stack.url}/v1/predictions/{out['id']}"
    [submit] = stack.submitted[before:]
    info = await stack.bus.request(
        d.GET_DEPLOYMENT,
        d.DeploymentRef(
            viewer=it.user.viewer(), owner=it.deployment["owner"], name=it.deployment["name"]
        ),
    )
    assert submit.deployment == p.DeploymentPlacement(
        deployment_id=info.id,
        deployment=f"{info.owner}/{info.name}",
        target=f"deployment:{info.id}",
        release=2,
        hardware="gpu-t4",
        min_instances=0,
        max_instances=5,
    )
    assert submit.version.version_id == it.versions[1]
    assert (submit.version.owner, submit.version.visibility) == (it.user.username, "private")
    assert submit.version.openapi_schema == SCHEMA_WITH_TEXT
    assert submit.input == {"text": "hello", "steps": 3}
    assert (submit.webhook, submit.webhook_events_filter) == (
        "https://example.com/hook",
        ["start", "completed"],
    )
    assert submit.cancel_after_seconds == 30


async def test_prefer_wait_answers_with_the_finished_prediction(stack: Stack) -> None:
    it = await deployed(stack)
    stack.finished = True
    try:
        response = await stack.http.post(
            f"{it.path}/predictions",
            json={"input": {"text": "hi"}},
            headers=it.user.headers | {"Prefer": "wait=5"},
        )
    finally:
        stack.finished = False

    assert response.status_code == 201, response.text
    assert response.headers["preference-applied"] == "wait=5"
    assert (response.json()["status"], response.json()["output"]) == ("succeeded", "done")


@pytest.mark.parametrize(
    ("body", "headers", "fields"),
    [
        ({"input": {}}, {}, ["input"]),
        ({"input": {"text": 1, "steps": "many"}}, {}, ["input.steps", "input.text"]),
        ({"input": {"text": "x"}, "version": "abc"}, {}, ["version"]),
        ({"input": {"text": "x"}, "webhook": "ftp://x"}, {}, ["webhook"]),
        ({}, {}, ["input"]),
        ({"input": {"text": "x"}}, {"Prefer": "wait=99"}, ["Prefer"]),
        ({"input": {"text": "x"}}, {"Cancel-After": "1s"}, ["Cancel-After"]),
    ],
)
async def test_invalid_predictions_are_refused_before_admission(
    stack: Stack, body: dict[str, Any], headers: dict[str, str], fields: list[str]
) -> None:
    it = await deployed(stack)
    before = len(stack.submitted)

    response = await stack.http.post(
        f"{it.path}/predictions", json=body, headers=it.user.headers | headers
    )

    assert invalid_fields(response) == fields
    assert len(stack.submitted) == before


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/deployments/%00/x/predictions", "owner"),
        ("/v1/deployments/a/b%00/predictions", "name"),
    ],
)
async def test_a_nul_in_the_path_is_invalid_input(stack: Stack, path: str, field: str) -> None:
    user = await stack.user()
    before = len(stack.submitted)

    response = await stack.http.post(path, json={"input": {"text": "x"}}, headers=user.headers)

    assert invalid_fields(response) == [field]
    assert len(stack.submitted) == before


# -- the official Python client ------------------------------------------------------------------


async def test_the_replicate_client_manages_deployments(stack: Stack) -> None:
    user = await stack.user()
    model = await stack.model(user)
    version = await stack.version(user, model)
    client = user.client(stack.url)
    name = unique("dep")

    created = await asyncio.to_thread(
        client.deployments.create,
        name=f"{user.username}/{name}",  # the client cuts owner/name to the name
        model=model,
        version=version,
        hardware="cpu",
        min_instances=0,
        max_instances=2,
    )
    got = await asyncio.to_thread(client.deployments.get, f"{user.username}/{name}")
    updated = await asyncio.to_thread(
        client.deployments.update, user.username, name, min_instances=1, max_instances=3
    )
    page = await asyncio.to_thread(client.deployments.list)

    assert (created.owner, created.name, created.id) == (
        user.username,
        name,
        f"{user.username}/{name}",
    )
    assert created.current_release is not None
    assert got.current_release is not None
    assert created.current_release.number == got.current_release.number == 1
    assert created.current_release.created_by is not None
    assert created.current_release.created_by.username == user.username
    assert created.current_release.created_by.name == user.caller.account.name
    assert updated.current_release is not None
    assert updated.current_release.number == 2
    assert updated.current_release.configuration.min_instances == 1
    assert updated.current_release.configuration.max_instances == 3
    assert [(x.owner, x.name) for x in page.results] == [(user.username, name)]

    async with stack.scheduler_says(d.TargetActivity()):
        assert await asyncio.to_thread(client.deployments.delete, user.username, name) is True
    with pytest.raises(ReplicateError) as caught:
        await asyncio.to_thread(client.deployments.get, f"{user.username}/{name}")
    assert caught.value.status == 404


async def test_the_replicate_client_pages_through_deployments(stack: Stack) -> None:
    user = await stack.user()
    model = await stack.model(user)
    version = await stack.version(user, model)
    names = [(await stack.deploy(user, model, version))["name"] for _ in range(101)]
    client = user.client(stack.url)

    def everything() -> list[list[str]]:
        return [[x.name for x in page] for page in replicate.paginate(client.deployments.list)]

    pages = await asyncio.to_thread(everything)

    assert [len(p) for p in pages] == [100, 1]
    assert [n for page in pages for n in page] == names[::-1]


async def test_the_replicate_client_runs_a_deployment(stack: Stack) -> None:
    it = await deployed(stack)
    client = it.user.client(stack.url)
    ref = f"{it.deployment['owner']}/{it.deployment['name']}"

    prediction = await asyncio.to_thread(
        client.deployments.predictions.create, ref, input={"text": "hi"}
    )

    assert (prediction.status, prediction.version) == ("starting", it.versions[0])
    assert stack.submitted[-1].deployment is not None
    assert stack.submitted[-1].deployment.deployment == ref
    with pytest.raises(ReplicateError) as caught:
        await asyncio.to_thread(client.deployments.predictions.create, ref, input={"steps": 1})
    assert caught.value.status == 422
