"""Deployments through the registry's request-reply calls: rules, releases, visibility, events.

The module runs its own registry on its own NATS server, so that nothing else in the session
answers the scheduler's ``TARGET_ACTIVITY`` call: each test that needs it serves a stand-in.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import cogplane.registry
from cogplane.common.bus import Bus
from cogplane.common.contracts import accounts as c
from cogplane.common.contracts import deployments as d
from cogplane.common.contracts import models as m
from cogplane.common.contracts.events import parse_event
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from cogplane.common.errors import (
    CogplaneError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unavailable,
)
from cogplane.common.testing.apps import running
from cogplane.common.testing.fixtures import migrate_service
from cogplane.common.testing.wait import eventually
from cogplane.registry.app import create_app
from cogplane.registry.bootstrap import bootstrap
from cogplane.registry.config import RegistrySettings
from cogplane.registry.models import SCHEMA

MAX_MIN, MAX_MAX = 3, 8  # this module's limits, unlike the defaults (5 and 20)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def viewer(caller: c.Caller, *organizations: str) -> m.Viewer:
    return m.Viewer(
        account_id=caller.account.id,
        username=caller.account.username,
        organizations=[*caller.organizations, *organizations],
    )


@dataclass
class Registry:
    """The module's registry, its NATS and the events it announced about deployments."""

    settings: RegistrySettings
    bus: Bus
    nats_url: str
    events: list[d.DeploymentReleased | d.DeploymentDeleted] = field(default_factory=list)

    async def call(self, rpc: Any, request: Any) -> Any:
        return await self.bus.request(rpc, request)

    async def user(self) -> c.Caller:
        """A new user with a token (the first one is created by bootstrapping an admin)."""
        result = await bootstrap(self.settings, unique("admin"), unique("org"))
        return await self.call(c.VERIFY_TOKEN, c.VerifyToken(token=str(result["token"])))

    async def organization(self, owner: c.Caller, *members: c.Caller) -> str:
        name = unique("org")
        await self.call(
            c.CREATE_ORGANIZATION,
            c.CreateOrganization(account_id=owner.account.id, username=name, name="Acme Corp"),
        )
        for member in members:
            request = c.MemberRequest(
                account_id=owner.account.id, organization=name, username=member.account.username
            )
            await self.call(c.ADD_MEMBER, request)
        return name

    async def model(self, who: m.Viewer, visibility: str = "private", owner: str = "") -> str:
        request = m.CreateModel(
            viewer=who,
            owner=owner or who.username,
            name=unique("model"),
            visibility=visibility,  # type: ignore[arg-type]
            hardware="gpu-t4",
        )
        info = await self.call(m.CREATE_MODEL, request)
        return f"{info.owner}/{info.name}"

    async def version(self, who: m.Viewer, model: str) -> str:
        """Build a ready version of ``model`` as a runner would report it."""
        owner, name = model.split("/")
        start = m.StartBuild(
            viewer=who, owner=owner, name=name, source_object=unique("src"), size=1
        )
        build = await self.call(m.START_BUILD, start)
        version = m.BuiltVersion(
            id=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
            cog_version="0.13.7",
            openapi_schema={"components": {"schemas": {"Input": {"type": "object"}}}},
            python_version="3.11",
            predict="predict.py:Predictor",
            concurrency_max=4,
            env_key="e" * 64,
            source_digest="s" * 64,
        )
        await self.bus.publish(m.BuildFinished(build_id=build.id, version=version))

        async def ready() -> bool:
            info = await self.call(m.GET_BUILD, m.BuildRef(viewer=who, build_id=build.id))
            return bool(info.status == "ready")

        await eventually(ready, timeout=10)
        return version.id

    async def create(self, who: m.Viewer, model: str, version: str, /, **changes: Any) -> Any:
        fields: dict[str, Any] = {
            "name": unique("dep"),
            "model": model,
            "version": version,
            "hardware": "gpu-t4",
            "min_instances": 0,
            "max_instances": 2,
        }
        request = d.CreateDeployment(viewer=who, **(fields | changes))
        return await self.call(d.CREATE_DEPLOYMENT, request)

    async def update(self, who: m.Viewer, info: d.DeploymentInfo, **changes: Any) -> Any:
        request = d.UpdateDeployment(viewer=who, owner=info.owner, name=info.name, **changes)
        return await self.call(d.UPDATE_DEPLOYMENT, request)

    def ref(self, who: m.Viewer, info: d.DeploymentInfo) -> d.DeploymentRef:
        return d.DeploymentRef(viewer=who, owner=info.owner, name=info.name)

    async def announced(self, deployment_id: str, count: int) -> list[Any]:
        """The events about one deployment, once ``count`` of them have arrived."""

        async def arrived() -> list[Any] | None:
            found = [e for e in self.events if e.deployment_id == deployment_id]
            return found if len(found) >= count else None

        return await eventually(arrived, timeout=10)

    @asynccontextmanager
    async def scheduler(self, activity: d.TargetActivity) -> AsyncIterator[list[str]]:
        """A stand-in for the scheduler's answer about a target; yields the targets asked about."""
        asked: list[str] = []
        stand_in = Bus(self.nats_url, "scheduler", timedelta(seconds=5))
        await stand_in.connect()

        async def answer(request: d.TargetRef) -> d.TargetActivity:
            asked.append(request.target)
            return activity

        await stand_in.serve(d.TARGET_ACTIVITY, answer)
        try:
            yield asked
        finally:
            await stand_in.close()


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(Path(tmp_path_factory.mktemp("deployments-nats")) / "nats", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def own_settings(
    postgres: EmbeddedPostgres, migrated_schemas: set[str], own_nats: EmbeddedNats
) -> RegistrySettings:
    migrate_service(postgres, migrated_schemas, cogplane.registry.__file__, SCHEMA)
    return RegistrySettings(
        database_url=postgres.url,
        nats_url=own_nats.url,
        port=0,
        deployment_max_min=MAX_MIN,
        deployment_max_max=MAX_MAX,
    )


@pytest.fixture(scope="module")
async def reg(own_settings: RegistrySettings, own_nats: EmbeddedNats) -> AsyncIterator[Registry]:
    settings = own_settings
    async with running(create_app(settings)):
        bus = Bus(own_nats.url, "deployment-tests", timedelta(seconds=5))
        await bus.connect()
        registry = Registry(settings, bus, own_nats.url)

        async def collect(data: bytes, _: dict[str, str]) -> None:
            event = parse_event(data)
            assert isinstance(event, d.DeploymentReleased | d.DeploymentDeleted)
            registry.events.append(event)

        await bus.consume("deployment-tests", "cogplane.events.deployments.>", collect)
        yield registry
        await bus.close()


@dataclass
class Owner:
    """A user with a private model that has two ready versions."""

    caller: c.Caller
    model: str
    versions: tuple[str, str]

    @property
    def viewer(self) -> m.Viewer:
        return viewer(self.caller)


MakeOwner = Callable[[], Awaitable[Owner]]


@pytest.fixture(scope="module")
def new_owner(reg: Registry) -> MakeOwner:
    async def make() -> Owner:
        caller = await reg.user()
        model = await reg.model(viewer(caller))
        first = await reg.version(viewer(caller), model)
        second = await reg.version(viewer(caller), model)
        return Owner(caller, model, (first, second))

    return make


def invalid_fields(error: CogplaneError) -> list[str]:
    assert isinstance(error, InvalidInput), error.to_problem()
    return [f["field"] for f in error.extra["invalid_fields"]]


async def count(db: AsyncEngine, table: str, deployment_id: str) -> int:
    column = "id" if table == "deployments" else "deployment_id"
    async with db.connect() as conn:
        found = await conn.scalar(
            text(f"SELECT count(*) FROM registry.{table} WHERE {column} = :i"),  # noqa: S608 - ours
            {"i": deployment_id},
        )
    return int(found or 0)


# -- create --------------------------------------------------------------------------------------


async def test_create_makes_release_one(reg: Registry, new_owner: MakeOwner) -> None:
    alice = await new_owner()
    info = await reg.create(alice.viewer, alice.model, alice.versions[0], min_instances=1)

    assert info.owner == alice.caller.account.username
    assert info.owner_account_id == alice.caller.account.id
    release = info.current_release
    assert (release.number, release.model, release.version) == (
        1,
        alice.model,
        alice.versions[0],
    )
    assert release.configuration == d.Configuration(
        hardware="gpu-t4", min_instances=1, max_instances=2
    )
    assert release.created_by == alice.caller.account.username
    assert release.created_by_account is not None
    assert release.created_by_account.type == "user"
    assert release.created_by_account.name == alice.caller.account.name
    assert await reg.call(d.GET_DEPLOYMENT, reg.ref(alice.viewer, info)) == info


async def test_create_announces_the_release_with_the_version(
    reg: Registry, new_owner: MakeOwner
) -> None:
    alice = await new_owner()
    info = await reg.create(alice.viewer, alice.model, alice.versions[0], hardware="cpu")

    [event] = await reg.announced(info.id, 1)

    assert isinstance(event, d.DeploymentReleased)
    assert (event.owner, event.name, event.release) == (info.owner, info.name, 1)
    assert event.owner_account_id == alice.caller.account.id
    assert event.target == info.target == f"deployment:{info.id}"
    assert event.configuration == info.current_release.configuration
    spec = event.version
    assert (spec.version_id, f"{spec.owner}/{spec.name}") == (alice.versions[0], alice.model)
    assert (spec.visibility, spec.hardware) == ("private", "gpu-t4")  # the model's
    assert (spec.predict, spec.concurrency_max, spec.slots) == ("predict.py:Predictor", 4, 4)
    assert spec.openapi_schema == {"components": {"schemas": {"Input": {"type": "object"}}}}


async def test_the_name_is_unique_per_owner(reg: Registry, new_owner: MakeOwner) -> None:
    alice, bob = await new_owner(), await new_owner()
    info = await reg.create(alice.viewer, alice.model, alice.versions[0])

    with pytest.raises(Conflict):
        await reg.create(alice.viewer, alice.model, alice.versions[1], name=info.name)
    other = await reg.create(bob.viewer, bob.model, bob.versions[0], name=info.name)
    assert (other.owner, other.name) == (bob.caller.account.username, info.name)


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"hardware": "gpu-imaginary"}, ["hardware"]),
        ({"version": "f" * 64}, ["version"]),
        ({"min_instances": -1}, ["min_instances"]),
        ({"min_instances": MAX_MIN + 1, "max_instances": MAX_MAX}, ["min_instances"]),
        ({"max_instances": 0}, ["max_instances"]),
        ({"max_instances": MAX_MAX + 1}, ["max_instances"]),
        ({"min_instances": 3, "max_instances": 2}, ["min_instances"]),
        (
            {"version": "nope", "hardware": "x", "min_instances": 9, "max_instances": 99},
            ["version", "hardware", "min_instances", "max_instances"],
        ),
        (
            {"hardware": "x", "min_instances": -1, "max_instances": -1},
            ["hardware", "min_instances", "max_instances"],
        ),
        ({"model": "no-slash"}, ["model"]),
    ],
)
async def test_create_refuses_invalid_fields(
    reg: Registry, new_owner: MakeOwner, changes: dict[str, Any], fields: list[str]
) -> None:
    alice = await new_owner()
    with pytest.raises(CogplaneError) as caught:
        await reg.create(alice.viewer, alice.model, alice.versions[0], **changes)

    assert invalid_fields(caught.value) == fields
    listed = await reg.call(d.LIST_DEPLOYMENTS, d.ListDeployments(viewer=alice.viewer))
    assert listed.results == []


async def test_the_version_must_belong_to_the_model(reg: Registry, new_owner: MakeOwner) -> None:
    alice = await new_owner()
    other_model = await reg.model(alice.viewer)
    other_version = await reg.version(alice.viewer, other_model)

    with pytest.raises(CogplaneError) as caught:
        await reg.create(alice.viewer, alice.model, other_version)

    assert invalid_fields(caught.value) == ["version"]


async def test_the_model_must_exist_and_be_visible(reg: Registry, new_owner: MakeOwner) -> None:
    alice, bob = await new_owner(), await new_owner()

    with pytest.raises(NotFound):
        await reg.create(alice.viewer, f"{alice.caller.account.username}/nope", "v")
    with pytest.raises(NotFound):  # bob's private model
        await reg.create(alice.viewer, bob.model, bob.versions[0])

    public = await reg.model(bob.viewer, visibility="public")
    version = await reg.version(bob.viewer, public)
    info = await reg.create(alice.viewer, public, version)
    assert info.current_release.model == public


async def test_owners_are_you_or_your_organizations(reg: Registry, new_owner: MakeOwner) -> None:
    alice, bob = await new_owner(), await new_owner()
    org = await reg.organization(alice.caller)

    with pytest.raises(Forbidden):
        await reg.create(bob.viewer, bob.model, bob.versions[0], owner=org)
    info = await reg.create(viewer(alice.caller, org), alice.model, alice.versions[0], owner=org)
    assert info.owner == org
    assert info.current_release.created_by == alice.caller.account.username


# -- update --------------------------------------------------------------------------------------


async def test_each_update_is_a_new_release(reg: Registry, new_owner: MakeOwner) -> None:
    alice = await new_owner()
    info = await reg.create(alice.viewer, alice.model, alice.versions[0])

    second = await reg.update(alice.viewer, info, max_instances=5)
    third = await reg.update(alice.viewer, info, version=alice.versions[1], hardware="cpu")
    fourth = await reg.update(alice.viewer, info, max_instances=5)  # changes nothing: still new

    assert [r.current_release.number for r in (second, third, fourth)] == [2, 3, 4]
    assert second.current_release.configuration.max_instances == 5
    assert second.current_release.version == alice.versions[0]
    assert third.current_release.version == alice.versions[1]
    assert third.current_release.configuration == d.Configuration(
        hardware="cpu", min_instances=0, max_instances=5
    )
    assert fourth.current_release.configuration == third.current_release.configuration
    assert fourth.created_at == info.created_at
    releases = await reg.call(d.LIST_RELEASES, reg.ref(alice.viewer, info))
    assert [r.number for r in releases.results] == [4, 3, 2, 1]
    assert [r.version for r in releases.results] == [alice.versions[1]] * 2 + [
        alice.versions[0]
    ] * 2
    events = await reg.announced(info.id, 4)
    assert [e.release for e in events] == [1, 2, 3, 4]
    assert events[2].version.version_id == alice.versions[1]
    assert events[2].configuration.hardware == "cpu"


async def test_updates_are_checked_on_the_merged_release(
    reg: Registry, new_owner: MakeOwner
) -> None:
    alice = await new_owner()
    info = await reg.create(alice.viewer, alice.model, alice.versions[0], min_instances=2)
    other_version = await reg.version(alice.viewer, await reg.model(alice.viewer))

    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"max_instances": 1}, ["max_instances"]),  # below the current min_instances (2)
        ({"min_instances": 3}, ["min_instances"]),  # above the current max_instances (2)
        ({"min_instances": MAX_MIN + 1}, ["min_instances"]),
        ({"hardware": "tpu"}, ["hardware"]),
        ({"version": other_version}, ["version"]),
        ({}, ["body"]),
    ]
    for changes, fields in cases:
        with pytest.raises(CogplaneError) as caught:
            await reg.update(alice.viewer, info, **changes)
        assert invalid_fields(caught.value) == fields, changes

    again = await reg.call(d.GET_DEPLOYMENT, reg.ref(alice.viewer, info))
    assert again == info


async def test_organization_members_update_and_are_named(
    reg: Registry, new_owner: MakeOwner
) -> None:
    alice, bob = await new_owner(), await new_owner()
    org = await reg.organization(alice.caller, bob.caller)
    public = await reg.model(alice.viewer, visibility="public")
    version = await reg.version(alice.viewer, public)
    info = await reg.create(viewer(alice.caller, org), public, version, owner=org)

    updated = await reg.update(viewer(bob.caller, org), info, min_instances=1)

    assert updated.current_release.created_by == bob.caller.account.username
    releases = await reg.call(d.LIST_RELEASES, reg.ref(viewer(bob.caller, org), info))
    assert [r.created_by for r in releases.results] == [
        bob.caller.account.username,
        alice.caller.account.username,
    ]


# -- visibility ----------------------------------------------------------------------------------


async def test_others_see_nothing(reg: Registry, new_owner: MakeOwner) -> None:
    alice, eve = await new_owner(), await new_owner()
    info = await reg.create(alice.viewer, alice.model, alice.versions[0])
    ref = reg.ref(eve.viewer, info)

    for rpc in (d.GET_DEPLOYMENT, d.LIST_RELEASES, d.RESOLVE_DEPLOYMENT, d.DELETE_DEPLOYMENT):
        with pytest.raises(NotFound):
            await reg.call(rpc, ref)
    with pytest.raises(NotFound):
        await reg.update(eve.viewer, info, max_instances=3)
    listed = await reg.call(d.LIST_DEPLOYMENTS, d.ListDeployments(viewer=eve.viewer))
    assert listed.results == []
    assert (
        await reg.call(d.GET_DEPLOYMENT, reg.ref(alice.viewer, info))
    ).current_release.number == 1


async def test_the_list_has_yours_and_your_organizations_newest_first(
    reg: Registry, new_owner: MakeOwner
) -> None:
    alice, bob, carol = await new_owner(), await new_owner(), await new_owner()
    org = await reg.organization(carol.caller, alice.caller)
    public = await reg.model(carol.viewer, visibility="public")
    version = await reg.version(carol.viewer, public)
    mine = [await reg.create(alice.viewer, alice.model, alice.versions[0]) for _ in range(2)]
    theirs = await reg.create(viewer(carol.caller, org), public, version, owner=org)
    await reg.create(bob.viewer, bob.model, bob.versions[0])
    await reg.create(carol.viewer, public, version)  # carol's own, not the organization's
    expected = [theirs.name, mine[1].name, mine[0].name]

    seen: list[str] = []
    cursor = None
    while True:
        page = await reg.call(
            d.LIST_DEPLOYMENTS,
            d.ListDeployments(viewer=viewer(alice.caller, org), cursor=cursor, limit=2),
        )
        seen += [i.name for i in page.results]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert seen == expected
    with pytest.raises(InvalidInput):
        await reg.call(d.LIST_DEPLOYMENTS, d.ListDeployments(viewer=alice.viewer, cursor="junk"))


async def test_resolve_gives_the_current_release_and_its_version(
    reg: Registry, new_owner: MakeOwner
) -> None:
    alice = await new_owner()
    info = await reg.create(alice.viewer, alice.model, alice.versions[0])
    await reg.update(alice.viewer, info, version=alice.versions[1], max_instances=4)

    resolved = await reg.call(d.RESOLVE_DEPLOYMENT, reg.ref(alice.viewer, info))

    assert resolved.deployment.id == info.id
    assert resolved.deployment.current_release.number == 2
    assert resolved.deployment.current_release.configuration.max_instances == 4
    assert resolved.version.version_id == alice.versions[1]
    assert (resolved.version.owner, resolved.version.visibility) == (
        alice.caller.account.username,
        "private",
    )


# -- delete --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("activity", "words"),
    [
        (d.TargetActivity(instances_online=2), ["2 instance(s) online"]),
        (d.TargetActivity(queued=3), ["3 prediction(s) queued"]),
        (d.TargetActivity(inflight=1, queued=4), ["4 prediction(s) queued", "1 prediction(s)"]),
    ],
)
async def test_a_busy_deployment_is_not_deleted(
    reg: Registry,
    new_owner: MakeOwner,
    db: AsyncEngine,
    activity: d.TargetActivity,
    words: list[str],
) -> None:
    alice = await new_owner()
    info = await reg.create(alice.viewer, alice.model, alice.versions[0])

    async with reg.scheduler(activity) as asked:
        with pytest.raises(Conflict) as caught:
            await reg.call(d.DELETE_DEPLOYMENT, reg.ref(alice.viewer, info))

    assert asked == [info.target]
    assert all(word in caught.value.detail for word in words), caught.value.detail
    assert await count(db, "deployments", info.id) == 1
    assert await reg.call(d.GET_DEPLOYMENT, reg.ref(alice.viewer, info)) == info


async def test_without_a_scheduler_nothing_is_deleted(
    reg: Registry, new_owner: MakeOwner, db: AsyncEngine
) -> None:
    alice = await new_owner()
    info = await reg.create(alice.viewer, alice.model, alice.versions[0])

    with pytest.raises(Unavailable):
        await reg.call(d.DELETE_DEPLOYMENT, reg.ref(alice.viewer, info))

    assert await count(db, "deployments", info.id) == 1
    assert await count(db, "deployment_releases", info.id) == 1


async def test_an_idle_deployment_is_deleted_with_its_releases(
    reg: Registry, new_owner: MakeOwner, db: AsyncEngine
) -> None:
    alice = await new_owner()
    info = await reg.create(alice.viewer, alice.model, alice.versions[0])
    await reg.update(alice.viewer, info, min_instances=1)

    async with reg.scheduler(d.TargetActivity()) as asked:
        await reg.call(d.DELETE_DEPLOYMENT, reg.ref(alice.viewer, info))

    assert asked == [info.target]
    assert await count(db, "deployments", info.id) == 0
    assert await count(db, "deployment_releases", info.id) == 0
    with pytest.raises(NotFound):
        await reg.call(d.GET_DEPLOYMENT, reg.ref(alice.viewer, info))
    events = await reg.announced(info.id, 3)
    assert isinstance(events[-1], d.DeploymentDeleted)
    assert events[-1].target == info.target
    again = await reg.create(alice.viewer, alice.model, alice.versions[0], name=info.name)
    assert again.id != info.id
    assert again.current_release.number == 1


# -- the catalog keeps what deployments run -------------------------------------------------------


async def test_a_deployed_version_or_model_cannot_be_deleted(
    reg: Registry, new_owner: MakeOwner
) -> None:
    alice = await new_owner()
    info = await reg.create(alice.viewer, alice.model, alice.versions[0])
    owner, name = alice.model.split("/")

    def version_ref(version: str) -> m.VersionRef:
        return m.VersionRef(viewer=alice.viewer, owner=owner, name=name, version_id=version)

    with pytest.raises(Conflict) as caught:
        await reg.call(m.DELETE_VERSION, version_ref(alice.versions[0]))
    assert f"{info.owner}/{info.name}" in caught.value.detail
    with pytest.raises(Conflict) as caught:
        await reg.call(m.DELETE_MODEL, m.ModelRef(viewer=alice.viewer, owner=owner, name=name))
    assert f"{info.owner}/{info.name}" in caught.value.detail

    await reg.update(alice.viewer, info, version=alice.versions[1])
    await reg.call(m.DELETE_VERSION, version_ref(alice.versions[0]))  # no longer deployed
    with pytest.raises(Conflict):
        await reg.call(m.DELETE_VERSION, version_ref(alice.versions[1]))
    releases = await reg.call(d.LIST_RELEASES, reg.ref(alice.viewer, info))
    assert [r.version for r in releases.results] == [alice.versions[1], alice.versions[0]]


def test_the_default_limits_are_replicates() -> None:
    settings = RegistrySettings()
    assert (settings.deployment_max_min, settings.deployment_max_max) == (5, 20)
