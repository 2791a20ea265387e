"""``/v1/usage``, ``/v1/billing/estimate`` and ``metrics.cost`` on predictions, through the gateway.

The module runs a registry and a gateway on its own NATS server, with stand-ins for billing
(inside ``stack.billing(...)`` only: it records every query and answers, fails or hangs as told)
and for the scheduler (it keeps the predictions a test gives it). Nothing else in the session can
answer in their place.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from replicate.prediction import Prediction

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
from cogplane.common.errors import CogplaneError, NotFound
from cogplane.common.testing.apps import running
from cogplane.common.testing.fixtures import migrate_service
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
            "Input": {"type": "object", "properties": {"text": {"type": "string"}}},
            "Output": {"type": "string"},
        }
    },
}
LINE_VALUES = {"seconds", "cost", "cost_exact"}
REPORT_FIELDS = {
    "account",
    "since",
    "until",
    "group_by",
    "lines",
    "total_seconds",
    "total_cost",
    "total_cost_exact",
}
ESTIMATE = b.Estimate(
    hardware="gpu-t4",
    price_per_second="0.000225",
    min_instances=1,
    max_instances=3,
    per_hour_at_min="0.81",
    per_hour_at_max="2.43",
    per_month_at_min="591.30",
    per_month_at_max="1773.90",
    hours_per_month=730,
)
Mode = Literal["answer", "fail", "hang"]


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


@dataclass
class Billing:
    """The stand-in: what it was asked, and how it answers."""

    mode: Mode
    costs: dict[str, str]
    every_cost: str | None
    usage_lines: list[b.UsageLine]
    usage: list[b.UsageQuery] = field(default_factory=list)
    cost_queries: list[list[str]] = field(default_factory=list)
    estimates: list[b.EstimateQuery] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def behave(self) -> None:
        if self.mode == "fail":
            raise CogplaneError("billing is broken")
        if self.mode == "hang":
            await self.release.wait()

    async def on_usage(self, query: b.UsageQuery) -> b.UsageReport:
        self.usage.append(query)
        await self.behave()
        return b.UsageReport(
            account=query.account,
            since=query.since,
            until=query.until,
            group_by=query.group_by,
            lines=self.usage_lines,
            total_seconds="42.5",
            total_cost="0.02",
            total_cost_exact="0.0150",
        )

    async def on_costs(self, query: b.PredictionCostQuery) -> b.PredictionCosts:
        self.cost_queries.append(query.prediction_ids)
        await self.behave()
        if self.every_cost is not None:
            return b.PredictionCosts(costs=dict.fromkeys(query.prediction_ids, self.every_cost))
        known = {i: self.costs[i] for i in query.prediction_ids if i in self.costs}
        return b.PredictionCosts(costs=known)

    async def on_estimate(self, query: b.EstimateQuery) -> b.Estimate:
        self.estimates.append(query)
        await self.behave()
        return ESTIMATE


@dataclass
class Stack:
    http: httpx.AsyncClient
    bus: Bus
    registry: RegistrySettings
    records: dict[str, p.PredictionRecord] = field(default_factory=dict)

    async def user(self) -> User:
        result = await bootstrap(self.registry, unique("admin"), unique("org"))
        token = str(result["token"])
        return User(token, await self.bus.request(c.VERIFY_TOKEN, c.VerifyToken(token=token)))

    @asynccontextmanager
    async def billing(
        self,
        mode: Mode = "answer",
        costs: dict[str, str] | None = None,
        lines: list[b.UsageLine] | None = None,
        every_cost: str | None = None,
    ) -> AsyncIterator[Billing]:
        """Billing, answering as told, for as long as this lasts."""
        fake = Billing(mode, costs or {}, every_cost, lines or [])
        stand_in = Bus(self.bus.url, "billing", timedelta(seconds=5))
        await stand_in.connect()
        await stand_in.serve(b.USAGE, fake.on_usage)
        await stand_in.serve(b.PREDICTION_COSTS, fake.on_costs)
        await stand_in.serve(b.ESTIMATE, fake.on_estimate)
        try:
            yield fake
        finally:
            fake.release.set()
            await stand_in.stop_intake()
            await stand_in.wait_idle(2)
            await stand_in.close()

    def prediction(self, user: User, status: p.PredictionStatus) -> str:
        """A prediction of ``user`` the scheduler stand-in knows, in ``status``."""
        done = status in p.TERMINAL
        record = p.PredictionRecord(
            id=new_id(),
            owner_account_id=user.caller.account.id,
            owner=user.username,
            model=f"{user.username}/m",
            version="v" * 64,
            target="version:x",
            input={"text": "hi"},
            output="ok" if done else None,
            status=status,
            created_at=utcnow(),
            started_at=utcnow(),
            completed_at=utcnow() if done else None,
            metrics={"predict_time": 0.5, "total_time": 0.7, "internal": 1} if done else {},
        )
        self.records[record.id] = record
        return record.id

    async def model_version(self, user: User) -> str:
        """A private model of ``user`` with a ready version, as owner/name."""
        name = unique("model")
        body = {"owner": user.username, "name": name, "visibility": "private", "hardware": "cpu"}
        created = await self.http.post("/v1/models", json=body, headers=user.headers)
        assert created.status_code == 201, created.text
        start = m.StartBuild(
            viewer=user.viewer(), owner=user.username, name=name, source_object="s", size=1
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
        return f"{user.username}/{name}"


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(Path(tmp_path_factory.mktemp("usage-nats")) / "nats", free_port())
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
    registry = own_registry_settings
    settings = GatewaySettings(database_url=postgres.url, nats_url=own_nats.url, port=0)
    bus = Bus(own_nats.url, "usage-tests", timedelta(seconds=5))
    scheduler = Bus(own_nats.url, "scheduler", timedelta(seconds=5))
    async with running(create_registry(registry)), running(create_gateway(settings)) as http:
        await bus.connect()
        await scheduler.connect()
        stack = Stack(http, bus, registry)

        async def stream_key(_: Empty) -> StreamKey:
            return StreamKey(key=base64.b64encode(b"k" * 32).decode())

        async def get(ref: p.PredictionRef) -> p.PredictionRecord:
            record = stack.records.get(ref.prediction_id)
            if record is None or record.owner_account_id != ref.viewer.account_id:
                raise NotFound("Prediction not found")
            return record

        async def listed(query: p.ListPredictions) -> p.PredictionPage:
            mine = [
                r for r in stack.records.values() if r.owner_account_id == query.viewer.account_id
            ]
            return p.PredictionPage(results=mine[::-1])

        async def submit(request: p.SubmitPrediction) -> p.PredictionRecord:
            spec = request.version
            record = p.PredictionRecord(
                id=new_id(),
                owner_account_id=request.viewer.account_id,
                owner=request.viewer.username,
                model=f"{spec.owner}/{spec.name}",
                version=spec.version_id,
                target=spec.target,
                input=request.input,
                status="succeeded",
                output="done",
                created_at=utcnow(),
                completed_at=utcnow(),
                metrics={"predict_time": 0.1, "total_time": 0.2},
            )
            stack.records[record.id] = record
            return record

        await scheduler.serve(GET_STREAM_KEY, stream_key)
        await scheduler.serve(p.GET_PREDICTION, get)
        await scheduler.serve(p.LIST_PREDICTIONS, listed)
        await scheduler.serve(p.SUBMIT_PREDICTION, submit)
        yield stack
        await scheduler.close()
        await bus.close()


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


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- /v1/usage -----------------------------------------------------------------------------------


async def test_usage_defaults_to_the_last_30_days_by_day(stack: Stack) -> None:
    user = await stack.user()
    day = b.UsageLine(day="2025-05-01", seconds="42.500", cost="0.02", cost_exact="0.0150")

    async with stack.billing(lines=[day]) as billing:
        before = utcnow()
        response = await stack.http.get("/v1/usage", headers=user.headers)
        after = utcnow()

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == REPORT_FIELDS
    assert body["account"] == user.username
    assert body["group_by"] == ["day"]
    assert body["lines"] == [
        {"day": "2025-05-01", "seconds": "42.500", "cost": "0.02", "cost_exact": "0.0150"}
    ]
    assert (body["total_seconds"], body["total_cost"], body["total_cost_exact"]) == (
        "42.5",
        "0.02",
        "0.0150",
    )
    assert body["since"].endswith("Z")
    assert body["until"].endswith("Z")
    [query] = billing.usage
    assert query.account == user.username
    assert query.group_by == ["day"]
    assert before <= query.until <= after
    assert query.until - query.since == timedelta(days=30)
    assert at(body["until"]) == query.until


async def test_usage_groups_in_the_order_asked_without_duplicates(stack: Stack) -> None:
    user = await stack.user()
    lines = [
        b.UsageLine(
            model=f"{user.username}/m",
            deployment=None,
            kind="idle",
            seconds="10",
            cost="0.00",
            cost_exact="0.001",
        )
    ]
    since, until = "2025-01-01T00:00:00Z", "2025-02-01T12:00:00+02:00"

    async with stack.billing(lines=lines) as billing:
        response = await stack.http.get(
            "/v1/usage",
            params={
                "since": since,
                "until": until,
                "group_by": ["model, deployment,model", "kind"],
            },
            headers=user.headers,
        )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["group_by"] == ["model", "deployment", "kind"]
    # Only the keys grouped by; a group without a deployment keeps its key, as null.
    assert body["lines"] == [
        {
            "model": f"{user.username}/m",
            "deployment": None,
            "kind": "idle",
            "seconds": "10",
            "cost": "0.00",
            "cost_exact": "0.001",
        }
    ]
    [query] = billing.usage
    assert query.group_by == ["model", "deployment", "kind"]
    assert query.since == datetime(2025, 1, 1, tzinfo=UTC)
    assert query.until == datetime(2025, 2, 1, 10, tzinfo=UTC)
    assert (body["since"], body["until"]) == ("2025-01-01T00:00:00Z", "2025-02-01T10:00:00Z")


async def test_usage_of_an_organization_and_only_of_ones_own(stack: Stack) -> None:
    user, outsider = await stack.user(), await stack.user()

    async with stack.billing() as billing:
        org = await stack.http.get("/v1/usage", params={"account": user.org}, headers=user.headers)
        itself = await stack.http.get(
            "/v1/usage", params={"account": user.username}, headers=user.headers
        )
        refused = [
            await stack.http.get("/v1/usage", params={"account": name}, headers=user.headers)
            for name in (outsider.username, outsider.org, unique("nobody"))
        ]

    assert org.status_code == 200, org.text
    assert org.json()["account"] == user.org
    assert itself.json()["account"] == user.username
    assert [q.account for q in billing.usage] == [user.org, user.username]
    for response in refused:
        assert assert_problem(response, 404)["title"] == "Not found"


async def test_usage_garbage_is_a_422_naming_the_field(stack: Stack) -> None:
    user = await stack.user()
    now = utcnow()
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"since": "yesterday"}, ["since"]),
        ({"since": "2025-13-01T00:00:00Z"}, ["since"]),
        ({"until": "2025-02-30"}, ["until"]),
        ({"since": "\x00"}, ["since"]),
        ({"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, ["until"]),
        ({"since": "2025-01-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, ["until"]),
        ({"since": (now + timedelta(days=1)).isoformat()}, ["until"]),
        ({"since": "2024-01-01T00:00:00Z", "until": "2025-01-02T00:00:00Z"}, ["since"]),
        ({"since": (now - timedelta(days=400)).isoformat()}, ["since"]),
        ({"until": "0001-01-02T00:00:00"}, ["until"]),
        ({"since": "0001-01-01T00:00:00+05:00"}, ["since"]),
        ({"group_by": "week"}, ["group_by"]),
        ({"group_by": "day,"}, ["group_by"]),
        ({"group_by": ""}, ["group_by"]),
        ({"group_by": "DAY"}, ["group_by"]),
        ({"group_by": ["day"] * 11}, ["group_by"]),
        ({"account": "x" * 65}, ["account"]),
    ]

    async with stack.billing() as billing:
        for params, fields in cases:
            response = await stack.http.get("/v1/usage", params=params, headers=user.headers)
            assert invalid_fields(response) == fields, (params, response.text)
        unauthenticated = await stack.http.get("/v1/usage")

    assert billing.usage == []
    assert_problem(unauthenticated, 401)


async def test_usage_within_366_days_is_accepted(stack: Stack) -> None:
    user = await stack.user()
    params = {"since": "2024-01-01", "until": "2025-01-01"}

    async with stack.billing() as billing:
        response = await stack.http.get("/v1/usage", params=params, headers=user.headers)

    assert response.status_code == 200, response.text
    assert billing.usage[0].until - billing.usage[0].since == timedelta(days=366)


async def test_usage_without_billing_is_a_503(stack: Stack) -> None:
    user = await stack.user()

    response = await stack.http.get("/v1/usage", headers=user.headers)

    assert assert_problem(response, 503)["title"] == "Service unavailable"


# -- /v1/billing/estimate ------------------------------------------------------------------------


async def test_estimate_asks_billing(stack: Stack) -> None:
    user = await stack.user()
    params = {"hardware": "gpu-t4", "min_instances": 1, "max_instances": 3}

    async with stack.billing() as billing:
        response = await stack.http.get("/v1/billing/estimate", params=params, headers=user.headers)
        defaults = await stack.http.get(
            "/v1/billing/estimate", params={"hardware": "cpu"}, headers=user.headers
        )

    assert response.status_code == 200, response.text
    assert response.json() == ESTIMATE.model_dump()
    assert defaults.status_code == 200, defaults.text
    assert billing.estimates == [
        b.EstimateQuery(hardware="gpu-t4", min_instances=1, max_instances=3),
        b.EstimateQuery(hardware="cpu", min_instances=0, max_instances=1),
    ]


async def test_estimate_garbage_is_a_422_naming_the_field(stack: Stack) -> None:
    user = await stack.user()
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({}, ["hardware"]),
        ({"hardware": "gpu-x"}, ["hardware"]),
        ({"hardware": "h" * 65}, ["hardware"]),
        ({"hardware": "cpu", "min_instances": -1}, ["min_instances"]),
        ({"hardware": "cpu", "min_instances": "two"}, ["min_instances"]),
        ({"hardware": "cpu", "max_instances": 1001}, ["max_instances"]),
        ({"hardware": "cpu", "max_instances": "1.5"}, ["max_instances"]),
        ({"hardware": "cpu", "min_instances": 3, "max_instances": 2}, ["min_instances"]),
        (
            {"hardware": "gpu-x", "min_instances": 3, "max_instances": 2},
            ["hardware", "min_instances"],
        ),
    ]

    async with stack.billing() as billing:
        for params, fields in cases:
            response = await stack.http.get(
                "/v1/billing/estimate", params=params, headers=user.headers
            )
            assert invalid_fields(response) == fields, (params, response.text)
        unauthenticated = await stack.http.get("/v1/billing/estimate", params={"hardware": "cpu"})

    assert billing.estimates == []
    assert_problem(unauthenticated, 401)


# -- metrics.cost on predictions -----------------------------------------------------------------


async def test_finished_predictions_carry_their_cost(stack: Stack) -> None:
    user = await stack.user()
    succeeded = stack.prediction(user, "succeeded")
    failed = stack.prediction(user, "failed")
    unknown = stack.prediction(user, "canceled")
    running_ = stack.prediction(user, "processing")
    costs = {succeeded: "0.000112500", failed: "0.000001", running_: "9"}

    async with stack.billing(costs=costs) as billing:
        one = await stack.http.get(f"/v1/predictions/{succeeded}", headers=user.headers)
        unfinished = await stack.http.get(f"/v1/predictions/{running_}", headers=user.headers)
        page = await stack.http.get("/v1/predictions", headers=user.headers)

    assert one.status_code == 200, one.text
    assert one.json()["metrics"] == {"predict_time": 0.5, "total_time": 0.7, "cost": "0.000112500"}
    assert Prediction.parse_obj(one.json()).metrics == one.json()["metrics"]  # Replicate's client
    assert unfinished.json()["metrics"] == {}
    by_id = {r["id"]: r["metrics"] for r in page.json()["results"]}
    assert by_id == {
        succeeded: {"predict_time": 0.5, "total_time": 0.7, "cost": "0.000112500"},
        failed: {"predict_time": 0.5, "total_time": 0.7, "cost": "0.000001"},
        unknown: {"predict_time": 0.5, "total_time": 0.7},
        running_: {},
    }
    # One call for the single prediction, none for the unfinished one, one for the whole page.
    assert billing.cost_queries == [[succeeded], [unknown, failed, succeeded]]


async def read_without_cost(stack: Stack, user: User, prediction_id: str) -> float:
    """GET the prediction and the page: both fine, without a cost; the seconds it took."""
    started = time.monotonic()
    one = await stack.http.get(f"/v1/predictions/{prediction_id}", headers=user.headers)
    page = await stack.http.get("/v1/predictions", headers=user.headers)
    elapsed = time.monotonic() - started
    assert one.status_code == 200, one.text
    assert one.json()["metrics"] == {"predict_time": 0.5, "total_time": 0.7}
    assert page.status_code == 200, page.text
    assert page.json()["results"][0]["metrics"] == {"predict_time": 0.5, "total_time": 0.7}
    return elapsed


@pytest.mark.parametrize("mode", ["fail", "hang"])
async def test_predictions_do_not_wait_for_a_failing_billing(stack: Stack, mode: Mode) -> None:
    user = await stack.user()
    done = stack.prediction(user, "succeeded")

    async with stack.billing(mode=mode, costs={done: "1"}) as billing:
        elapsed = await read_without_cost(stack, user, done)

    assert len(billing.cost_queries) == 2
    assert elapsed < 1.5  # two requests, each waiting 0.3 s at most for billing


async def test_predictions_without_billing_have_no_cost(stack: Stack) -> None:
    user = await stack.user()
    done = stack.prediction(user, "succeeded")

    assert await read_without_cost(stack, user, done) < 1.5


async def test_create_responses_carry_no_cost(stack: Stack) -> None:
    user = await stack.user()
    model = await stack.model_version(user)
    body = {"input": {"text": "hi"}}

    async with stack.billing(every_cost="0.5") as billing:
        plain = await stack.http.post(
            f"/v1/models/{model}/predictions", json=body, headers=user.headers
        )
        waited = await stack.http.post(
            f"/v1/models/{model}/predictions",
            json=body,
            headers=user.headers | {"Prefer": "wait=5"},
        )
        read = await stack.http.get(f"/v1/predictions/{waited.json()['id']}", headers=user.headers)

    for created in (plain, waited):
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "succeeded"
        assert "cost" not in created.json()["metrics"]
    assert read.json()["metrics"]["cost"] == "0.5"
    assert billing.cost_queries == [[waited.json()["id"]]]
