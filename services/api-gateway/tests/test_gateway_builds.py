"""Pushes and builds through the gateway, with the tests reporting the build as a runner would."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cogplane.common.bus import Bus
from cogplane.common.contracts import accounts as c
from cogplane.common.contracts.base import EVENTS_PREFIX, EVENTS_STREAM, SOURCES_BUCKET
from cogplane.common.contracts.events import parse_event
from cogplane.common.contracts.models import BuildLogged, BuildRequested

Actor = tuple[str, c.Caller]
MakeActor = Callable[[], Awaitable[Actor]]
Runner = Any  # the conftest's Runner (a test module cannot import the conftest)

BASE = "http://testserver"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    return problem


async def create_model(
    gateway: httpx.AsyncClient, token: str, owner: str, visibility: str = "private"
) -> str:
    name = unique("model")
    body = {"owner": owner, "name": name, "visibility": visibility, "hardware": "gpu-t4"}
    response = await gateway.post("/v1/models", json=body, headers=auth(token))
    assert response.status_code == 201, response.text
    return f"{owner}/{name}"


async def builds_of(db: AsyncEngine, ref: str) -> int:
    owner, name = ref.split("/")
    query = text(
        "SELECT count(*) FROM registry.builds b JOIN registry.models m ON m.id = b.model_id "
        "WHERE m.owner = :owner AND m.name = :name"
    )
    async with db.connect() as conn:
        return int(await conn.scalar(query, {"owner": owner, "name": name}) or 0)


async def stored_chunks(db: AsyncEngine, build_id: str) -> list[int]:
    query = text("SELECT seq FROM registry.build_logs WHERE build_id = :id ORDER BY seq")
    async with db.connect() as conn:
        return list((await conn.scalars(query, {"id": build_id})).all())


async def versions_of(gateway: httpx.AsyncClient, token: str, ref: str) -> list[str]:
    response = await gateway.get(f"/v1/models/{ref}/versions", headers=auth(token))
    assert response.status_code == 200, response.text
    return [v["id"] for v in response.json()["results"]]


# -- pushing -------------------------------------------------------------------------------------


async def test_a_push_starts_a_build(
    gateway: httpx.AsyncClient, bus: Bus, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    archive = runner.tarball()

    response = await runner.push(token, ref, archive)

    assert response.status_code == 202, response.text
    build = response.json()
    created_at = datetime.fromisoformat(build.pop("created_at"))
    assert created_at.tzinfo is not None
    assert build == {
        "id": build["id"],
        "model": ref,
        "status": "building",
        "finished_at": None,
        "version": None,
        "error": None,
        "logs": "",
        "logs_offset": 0,
        "env_reused": None,
        "duration_seconds": None,
        "urls": {"get": f"{BASE}/v1/builds/{build['id']}"},
    }
    assert (await runner.build(token, build["id"]))["status"] == "building"
    # The archive is kept by its digest, and some runner is asked to build it.
    source = f"sha256-{hashlib.sha256(archive).hexdigest()}"
    stored = io.BytesIO()
    await bus.get_object(SOURCES_BUCKET, source, stored)
    assert stored.getvalue() == archive
    last = await bus.js.get_last_msg(EVENTS_STREAM, f"{EVENTS_PREFIX}.builds.requested")
    requested = parse_event(last.data or b"")
    assert isinstance(requested, BuildRequested)
    owner, name = ref.split("/")
    assert (requested.build_id, requested.owner, requested.name) == (build["id"], owner, name)
    assert requested.source_object == source


@pytest.mark.parametrize("content_type", ["application/x-gzip", "application/octet-stream"])
async def test_a_push_accepts_the_archive_types(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner, content_type: str
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)

    response = await runner.push(token, ref, content_type=content_type)

    assert response.status_code == 202, response.text


async def test_a_streamed_push_is_accepted(
    gateway: httpx.AsyncClient, bus: Bus, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    archive = runner.tarball({"big.bin": uuid.uuid4().bytes * 20_000})

    async def chunks() -> Any:
        for start in range(0, len(archive), 64 * 1024):
            yield archive[start : start + 64 * 1024]

    response = await gateway.post(
        f"/v1/models/{ref}/builds",
        content=chunks(),
        headers=auth(token) | {"Content-Type": "application/gzip"},
    )

    assert response.status_code == 202, response.text
    stored = io.BytesIO()
    await bus.get_object(SOURCES_BUCKET, f"sha256-{hashlib.sha256(archive).hexdigest()}", stored)
    assert stored.getvalue() == archive


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"", {"Content-Type": "application/gzip"}, 400),
        (b"", {}, 400),
        (b'{"a": 1}', {"Content-Type": "application/json"}, 415),
        (b"archive", {"Content-Type": "text/plain"}, 415),
        (b"archive", {"Content-Type": "multipart/form-data; boundary=x"}, 415),
        (b"archive", {}, 415),
        (b"archive", {"Content-Type": "application/gzip", "Content-Length": "524288001"}, 413),
    ],
    ids=["empty", "empty-untyped", "json", "text", "multipart", "untyped", "too-large"],
)
async def test_a_bad_push_changes_nothing(
    gateway: httpx.AsyncClient,
    db: AsyncEngine,
    new_user: MakeActor,
    content: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    before = (await gateway.get(f"/v1/models/{ref}", headers=auth(token))).json()

    response = await gateway.post(
        f"/v1/models/{ref}/builds", content=content, headers=auth(token) | headers
    )

    assert_problem(response, status)
    assert await builds_of(db, ref) == 0
    assert (await gateway.get(f"/v1/models/{ref}", headers=auth(token))).json() == before


async def test_a_push_to_someone_elses_model(
    gateway: httpx.AsyncClient, db: AsyncEngine, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    other_token, _ = await new_user()
    private = await create_model(gateway, token, me.account.username, "private")
    public = await create_model(gateway, token, me.account.username, "public")
    missing = f"{me.account.username}/{unique('ghost')}"

    to_private = await runner.push(other_token, private)
    to_public = await runner.push(other_token, public)
    to_missing = await runner.push(token, missing)

    assert_problem(to_private, 404)
    assert to_private.json() == {
        "title": "Not found",
        "detail": f"Model {private} not found",
        "status": 404,
    }
    assert assert_problem(to_public, 403)["title"] == "Forbidden"
    assert_problem(to_missing, 404)
    assert await builds_of(db, private) == 0
    assert await builds_of(db, public) == 0


async def test_organization_members_push_to_organization_models(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, _ = await new_user()
    member_token, member = await new_user()
    outsider_token, _ = await new_user()
    org = unique("org")
    created = await gateway.post(
        "/v1/organizations", json={"username": org, "name": "Org"}, headers=auth(token)
    )
    assert created.status_code == 201, created.text
    await gateway.post(
        f"/v1/organizations/{org}/members",
        json={"username": member.account.username},
        headers=auth(token),
    )
    ref = await create_model(gateway, token, org)

    build = await runner.release(member_token, ref)

    assert build["model"] == ref
    assert (await runner.build(token, build["id"]))["version"] == build["version"]
    hidden = await gateway.get(f"/v1/builds/{build['id']}", headers=auth(outsider_token))
    assert_problem(hidden, 404)


# -- following a build ---------------------------------------------------------------------------


async def test_build_logs_arrive_in_order_once(
    gateway: httpx.AsyncClient, bus: Bus, db: AsyncEngine, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    build_id = (await runner.push(token, ref)).json()["id"]
    chunks = ["Building image\n", "Installing torch\n", "Done\n"]

    first = BuildLogged(build_id=build_id, seq=0, text=chunks[0])
    await bus.publish(first)
    await bus.publish(first)  # published twice (the same event)
    await runner.log(build_id, 0, chunks[0])  # sent again by a retrying runner (a new event)
    await runner.log(build_id, 2, chunks[2])  # overtakes seq 1
    await runner.settled()

    assert await stored_chunks(db, build_id) == [0, 2]
    early = await runner.build(token, build_id)
    assert (early["status"], early["logs"], early["logs_offset"]) == ("building", chunks[0], 1)
    # Asking from past the gap returns nothing new until the gap fills.
    assert (await runner.build(token, build_id, logs_offset=1))["logs"] == ""

    await runner.log(build_id, 1, chunks[1])
    version = runner.version()
    await runner.finish(build_id, version)
    build = await runner.finished(token, build_id)

    assert build["status"] == "ready"
    assert build["version"] == version.id
    assert build["error"] is None
    assert build["logs"] == "".join(chunks)
    assert build["logs_offset"] == 3
    assert build["env_reused"] is False
    assert build["duration_seconds"] == 1.5
    finished_at = datetime.fromisoformat(build["finished_at"])
    assert finished_at >= datetime.fromisoformat(build["created_at"])
    assert build["finished_at"].endswith("Z")


async def test_logs_offset_returns_only_newer_logs(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    build_id = (await runner.push(token, ref)).json()["id"]
    chunks = ["one\n", "two\n", "three\n"]
    for seq, chunk in enumerate(chunks):
        await runner.log(build_id, seq, chunk)
    await runner.finish(build_id, runner.version())
    await runner.finished(token, build_id)
    await runner.settled()

    for offset in range(5):
        build = await runner.build(token, build_id, logs_offset=offset)
        assert build["logs"] == "".join(chunks[offset:])
        assert build["logs_offset"] == max(offset, 3)


@pytest.mark.parametrize(
    "params", [{"logs_offset": -1}, {"logs_offset": "two"}, {"logs_offset": "1.5"}]
)
async def test_an_invalid_logs_offset(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner, params: dict[str, Any]
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    build_id = (await runner.push(token, ref)).json()["id"]

    response = await gateway.get(f"/v1/builds/{build_id}", params=params, headers=auth(token))

    problem = assert_problem(response, 422)
    assert [f["field"] for f in problem["invalid_fields"]] == ["logs_offset"]


@pytest.mark.parametrize("offset", [1_000_001, 2**31, 2**63])
async def test_a_huge_logs_offset_is_invalid_not_a_server_error(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner, offset: int
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    build_id = (await runner.push(token, ref)).json()["id"]

    response = await gateway.get(
        f"/v1/builds/{build_id}", params={"logs_offset": offset}, headers=auth(token)
    )

    problem = assert_problem(response, 422)
    assert [f["field"] for f in problem["invalid_fields"]] == ["logs_offset"]


async def test_a_failed_build_makes_no_version(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    build_id = (await runner.push(token, ref)).json()["id"]
    await runner.log(build_id, 0, "ERROR: No matching distribution found for torch==0.0.1\n")

    await runner.finish(build_id, error="pip install failed")
    build = await runner.finished(token, build_id)

    assert build["status"] == "failed"
    assert build["error"] == "pip install failed"
    assert build["version"] is None
    assert build["finished_at"] is not None
    await runner.settled()
    assert (await runner.build(token, build_id))["logs"].startswith("ERROR: No matching")
    assert await versions_of(gateway, token, ref) == []
    model = (await gateway.get(f"/v1/models/{ref}", headers=auth(token))).json()
    assert model["latest_version"] is None


async def test_a_failed_build_without_a_reason_still_says_why(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    build_id = (await runner.push(token, ref)).json()["id"]

    await runner.finish(build_id)
    build = await runner.finished(token, build_id)

    assert build["status"] == "failed"
    assert build["error"]


async def test_a_second_finish_changes_nothing(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    ready_id = (await runner.push(token, ref)).json()["id"]
    failed_id = (await runner.push(token, ref)).json()["id"]
    first = runner.version()
    await runner.finish(ready_id, first)
    await runner.finish(failed_id, error="out of disk")
    ready = await runner.finished(token, ready_id)
    failed = await runner.finished(token, failed_id)
    model = (await gateway.get(f"/v1/models/{ref}", headers=auth(token))).json()

    await runner.finish(ready_id, error="too late")
    await runner.finish(ready_id, runner.version())
    await runner.finish(failed_id, runner.version())
    await runner.settled()

    assert await runner.build(token, ready_id) == ready
    assert await runner.build(token, failed_id) == failed
    assert await versions_of(gateway, token, ref) == [first.id]
    assert (await gateway.get(f"/v1/models/{ref}", headers=auth(token))).json() == model


async def test_the_end_of_an_unknown_build_is_ignored(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ghost = uuid.uuid4().hex

    await runner.finish(ghost, runner.version())
    await runner.settled()

    assert_problem(await gateway.get(f"/v1/builds/{ghost}", headers=auth(token)), 404)
    # The registry goes on with real builds afterwards.
    ref = await create_model(gateway, token, me.account.username)
    assert (await runner.release(token, ref))["status"] == "ready"


async def test_logs_of_a_build_that_is_gone_are_dropped(
    gateway: httpx.AsyncClient, db: AsyncEngine, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    build_id = (await runner.push(token, ref)).json()["id"]
    deleted = await gateway.delete(f"/v1/models/{ref}", headers=auth(token))
    assert deleted.status_code == 204, deleted.text

    # The runner goes on building what nobody wants any more.
    await runner.log(build_id, 0, "still building\n")
    await runner.finish(build_id, runner.version())
    try:
        await runner.settled(timeout=2)
    except TimeoutError:
        # Give the orphan chunk a build again so its redelivery succeeds and leaves no poison
        # message behind for the other tests' waits.
        await revive_build(db, build_id, await create_model(gateway, token, me.account.username))
        await runner.settled()
        raise

    assert await stored_chunks(db, build_id) == []
    assert_problem(await gateway.get(f"/v1/builds/{build_id}", headers=auth(token)), 404)


async def revive_build(db: AsyncEngine, build_id: str, ref: str) -> None:
    owner, name = ref.split("/")
    insert = text(
        "INSERT INTO registry.builds (id, model_id, status, source_object, created_by, "
        "created_at) SELECT :id, id, 'failed', 'gone', 'tests', now() FROM registry.models "
        "WHERE owner = :owner AND name = :name"
    )
    async with db.begin() as conn:
        await conn.execute(insert, {"id": build_id, "owner": owner, "name": name})


async def test_a_build_is_private_to_the_models_owners(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    other_token, _ = await new_user()
    ref = await create_model(gateway, token, me.account.username, "public")
    build = await runner.release(token, ref)

    theirs = await gateway.get(f"/v1/builds/{build['id']}", headers=auth(other_token))
    ghost = await gateway.get(f"/v1/builds/{uuid.uuid4().hex}", headers=auth(token))
    nobody = await gateway.get(f"/v1/builds/{build['id']}")

    assert_problem(theirs, 404)
    assert theirs.json() == {
        "title": "Not found",
        "detail": f"Build {build['id']} not found",
        "status": 404,
    }
    assert_problem(ghost, 404)
    assert_problem(nobody, 401)
