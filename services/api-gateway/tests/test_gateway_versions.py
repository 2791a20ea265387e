"""Versions through the gateway: made by builds, listed, fetched and deleted; the Python client."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from replicate.client import Client as ReplicateClient
from replicate.exceptions import ReplicateError

from cogplane.common.contracts import accounts as c

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
    body = {"owner": owner, "name": name, "visibility": visibility, "hardware": "gpu-l40s"}
    response = await gateway.post("/v1/models", json=body, headers=auth(token))
    assert response.status_code == 201, response.text
    return f"{owner}/{name}"


async def get_json(gateway: httpx.AsyncClient, token: str, path: str) -> Any:
    response = await gateway.get(path, headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()


def expected_version(version: Any) -> dict[str, Any]:
    """The public view of what the runner reported (``created_at`` aside)."""
    return {
        "id": version.id,
        "cog_version": version.cog_version,
        "openapi_schema": version.openapi_schema,
    }


def without_time(version: dict[str, Any]) -> dict[str, Any]:
    created_at = version["created_at"]
    assert created_at.endswith("Z"), created_at
    datetime.fromisoformat(created_at)
    return {k: v for k, v in version.items() if k != "created_at"}


async def test_a_ready_build_becomes_the_latest_version(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    version = runner.version(cog_version="0.14.0")

    build = await runner.release(token, ref, version)

    assert build["version"] == version.id
    model = await get_json(gateway, token, f"/v1/models/{ref}")
    latest = model["latest_version"]
    assert set(latest) == {"id", "created_at", "cog_version", "openapi_schema"}
    assert without_time(latest) == expected_version(version)
    assert latest["openapi_schema"]["components"]["schemas"]["Input"]["type"] == "object"
    fetched = await get_json(gateway, token, f"/v1/models/{ref}/versions/{version.id}")
    assert fetched == latest
    listed = await get_json(gateway, token, "/v1/models")
    assert next(m for m in listed["results"] if m["url"] == f"{BASE}/{ref}") == model


async def test_versions_are_listed_newest_first(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    first, second = runner.version(), runner.version()
    await runner.release(token, ref, first)
    await runner.release(token, ref, second)

    page = await get_json(gateway, token, f"/v1/models/{ref}/versions")

    assert page["next"] is None
    assert page["previous"] is None
    assert [v["id"] for v in page["results"]] == [second.id, first.id]
    times = [datetime.fromisoformat(v["created_at"]) for v in page["results"]]
    assert times[0] > times[1]
    model = await get_json(gateway, token, f"/v1/models/{ref}")
    assert model["latest_version"] == page["results"][0]


async def test_a_model_without_versions_lists_none(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)

    page = await get_json(gateway, token, f"/v1/models/{ref}/versions")

    assert page == {"next": None, "previous": None, "results": []}


async def test_a_version_belongs_to_its_model(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    elsewhere = await create_model(gateway, token, me.account.username)
    version = runner.version()
    await runner.release(token, ref, version)
    missing = f"{me.account.username}/{unique('ghost')}"

    for path in (
        f"/v1/models/{elsewhere}/versions/{version.id}",
        f"/v1/models/{missing}/versions/{version.id}",
        f"/v1/models/{ref}/versions/{'0' * 64}",
        f"/v1/models/{ref}/versions/not-a-version",
        f"/v1/models/{ref}/versions/{version.id.upper()}",
        f"/v1/models/{ref}/versions/{'f' * 300}",
    ):
        response = await gateway.get(path, headers=auth(token))
        assert assert_problem(response, 404)["title"] == "Not found", path
    assert_problem(await gateway.get(f"/v1/models/{missing}/versions", headers=auth(token)), 404)


async def test_versions_of_a_private_model_are_hidden_from_others(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    other_token, _ = await new_user()
    private = await create_model(gateway, token, me.account.username, "private")
    public = await create_model(gateway, token, me.account.username, "public")
    hidden, shown = runner.version(), runner.version()
    await runner.release(token, private, hidden)
    await runner.release(token, public, shown)

    listing = await gateway.get(f"/v1/models/{private}/versions", headers=auth(other_token))
    one = await gateway.get(f"/v1/models/{private}/versions/{hidden.id}", headers=auth(other_token))
    public_page = await get_json(gateway, other_token, f"/v1/models/{public}/versions")
    public_one = await get_json(gateway, other_token, f"/v1/models/{public}/versions/{shown.id}")

    assert_problem(listing, 404)
    assert_problem(one, 404)
    assert [v["id"] for v in public_page["results"]] == [shown.id]
    assert public_one["id"] == shown.id


async def test_deleting_versions_of_a_private_model(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username, "private")
    old, middle, new = runner.version(), runner.version(), runner.version()
    for version in (old, middle, new):
        await runner.release(token, ref, version)

    # The newest goes: the one before it becomes the latest.
    deleted = await gateway.delete(f"/v1/models/{ref}/versions/{new.id}", headers=auth(token))

    assert deleted.status_code == 202, deleted.text
    assert deleted.content == b""
    gone = await gateway.get(f"/v1/models/{ref}/versions/{new.id}", headers=auth(token))
    assert_problem(gone, 404)
    model = await get_json(gateway, token, f"/v1/models/{ref}")
    assert model["latest_version"]["id"] == middle.id
    # An older one goes: the latest stays.
    deleted = await gateway.delete(f"/v1/models/{ref}/versions/{old.id}", headers=auth(token))
    assert deleted.status_code == 202, deleted.text
    assert (await get_json(gateway, token, f"/v1/models/{ref}"))["latest_version"]["id"] == (
        middle.id
    )
    page = await get_json(gateway, token, f"/v1/models/{ref}/versions")
    assert [v["id"] for v in page["results"]] == [middle.id]
    again = await gateway.delete(f"/v1/models/{ref}/versions/{old.id}", headers=auth(token))
    assert_problem(again, 404)
    # The last goes: no latest version, and the model itself can go now.
    deleted = await gateway.delete(f"/v1/models/{ref}/versions/{middle.id}", headers=auth(token))
    assert deleted.status_code == 202, deleted.text
    assert (await get_json(gateway, token, f"/v1/models/{ref}"))["latest_version"] is None
    assert (await gateway.delete(f"/v1/models/{ref}", headers=auth(token))).status_code == 204


async def test_versions_of_a_public_model_cannot_be_deleted(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username, "public")
    version = runner.version()
    await runner.release(token, ref, version)

    response = await gateway.delete(f"/v1/models/{ref}/versions/{version.id}", headers=auth(token))

    assert assert_problem(response, 409)["title"] == "Conflict"
    page = await get_json(gateway, token, f"/v1/models/{ref}/versions")
    assert [v["id"] for v in page["results"]] == [version.id]


async def test_only_owners_delete_versions(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    other_token, _ = await new_user()
    private = await create_model(gateway, token, me.account.username, "private")
    public = await create_model(gateway, token, me.account.username, "public")
    hidden, shown = runner.version(), runner.version()
    await runner.release(token, private, hidden)
    await runner.release(token, public, shown)

    on_private = await gateway.delete(
        f"/v1/models/{private}/versions/{hidden.id}", headers=auth(other_token)
    )
    on_public = await gateway.delete(
        f"/v1/models/{public}/versions/{shown.id}", headers=auth(other_token)
    )

    assert_problem(on_private, 404)
    assert_problem(on_public, 403)
    assert (await get_json(gateway, token, f"/v1/models/{private}/versions"))["results"]
    assert (await get_json(gateway, token, f"/v1/models/{public}/versions"))["results"]


async def test_the_same_build_twice_is_one_version(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    archive = runner.tarball()
    version = runner.version()

    first = await runner.release(token, ref, version, archive)
    model = await get_json(gateway, token, f"/v1/models/{ref}")
    second = await runner.release(token, ref, version, archive)

    assert first["id"] != second["id"]
    assert first["version"] == second["version"] == version.id
    page = await get_json(gateway, token, f"/v1/models/{ref}/versions")
    assert [v["id"] for v in page["results"]] == [version.id]
    assert await get_json(gateway, token, f"/v1/models/{ref}") == model


async def test_listing_by_latest_version(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    mine = me.account.username
    without = await create_model(gateway, token, mine)
    older = await create_model(gateway, token, mine)
    newer = await create_model(gateway, token, mine)
    await runner.release(token, newer)
    await runner.release(token, older)  # the older model gets the newer version

    page = await get_json(gateway, token, "/v1/models?sort_by=latest_version_created_at")

    refs = [f"{m['owner']}/{m['name']}" for m in page["results"]]
    assert without not in refs
    assert [r for r in refs if r in (older, newer)] == [older, newer]
    assert all(m["latest_version"] is not None for m in page["results"])
    times = [datetime.fromisoformat(m["latest_version"]["created_at"]) for m in page["results"]]
    assert times == sorted(times, reverse=True)


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("cursor", ["!!!", _cursor(b"[]"), _cursor(b'{"t": "x", "id": "y"}')])
async def test_a_bad_versions_cursor_is_invalid(
    gateway: httpx.AsyncClient, new_user: MakeActor, cursor: str
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)

    response = await gateway.get(
        f"/v1/models/{ref}/versions", params={"cursor": cursor}, headers=auth(token)
    )

    problem = assert_problem(response, 422)
    assert [f["field"] for f in problem["invalid_fields"]] == ["cursor"]


async def test_a_crafted_versions_cursor_is_invalid_not_a_server_error(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    ref = await create_model(gateway, token, me.account.username)
    cursor = _cursor(b'{"t": "2024-01-01T00:00:00+00:00", "id": "a\\u0000b"}')

    response = await gateway.get(
        f"/v1/models/{ref}/versions", params={"cursor": cursor}, headers=auth(token)
    )

    problem = assert_problem(response, 422)
    assert [f["field"] for f in problem["invalid_fields"]] == ["cursor"]


# -- the official Python client ------------------------------------------------------------------


@pytest.fixture
def client_for(gateway: httpx.AsyncClient) -> Callable[[str], ReplicateClient]:
    """The ``replicate`` client against the in-process gateway (its async methods only: the
    sync ones need a real socket)."""
    transport = gateway._transport  # the ASGI transport of the gateway app

    def make(token: str) -> ReplicateClient:
        return ReplicateClient(api_token=token, base_url=BASE, transport=transport)

    return make


async def test_the_python_client_reads_models_and_versions(
    gateway: httpx.AsyncClient,
    new_user: MakeActor,
    runner: Runner,
    client_for: Callable[[str], ReplicateClient],
) -> None:
    token, me = await new_user()
    client = client_for(token)
    name = unique("client")

    created = await client.models.async_create(
        me.account.username, name, visibility="public", hardware="gpu-t4", description="d"
    )
    ref = f"{me.account.username}/{name}"
    empty = await client.models.async_get(ref)
    version = runner.version()
    await runner.release(token, ref, version)
    model = await client.models.async_get(me.account.username, name)
    versions = await model.versions.async_list()
    one = await model.versions.async_get(version.id)
    hardware = await client.hardware.async_list()
    page = await client.models.async_list()

    assert (created.owner, created.name, created.visibility) == (
        me.account.username,
        name,
        "public",
    )
    assert created.url == f"{BASE}/{ref}"
    assert created.run_count == 0
    assert empty.latest_version is None
    assert model.latest_version is not None
    assert model.latest_version.id == version.id
    assert model.latest_version.cog_version == version.cog_version
    assert model.latest_version.openapi_schema == version.openapi_schema
    assert model.latest_version.created_at.tzinfo is not None
    assert [v.id for v in versions.results] == [version.id]
    assert one.id == version.id
    assert {"cpu", "gpu-t4", "gpu-h100"} <= {h.sku for h in hardware}
    assert ref in {f"{m.owner}/{m.name}" for m in page.results}


async def test_the_python_client_deletes_and_reports_errors(
    new_user: MakeActor, runner: Runner, client_for: Callable[[str], ReplicateClient]
) -> None:
    token, me = await new_user()
    client = client_for(token)
    name = unique("client")
    await client.models.async_create(
        me.account.username, name, visibility="private", hardware="cpu"
    )
    ref = f"{me.account.username}/{name}"
    version = runner.version()
    await runner.release(token, ref, version)
    model = await client.models.async_get(ref)

    await model.versions.async_delete(version.id)
    deleted = await client.models.async_delete(ref)
    with pytest.raises(ReplicateError) as missing:
        await client.models.async_get(ref)
    with pytest.raises(ReplicateError) as invalid:
        await client.models.async_create(
            me.account.username, "Not Valid", visibility="private", hardware="cpu"
        )

    assert deleted is True
    assert missing.value.status == 404
    assert missing.value.title == "Not found"
    assert invalid.value.status == 422
    assert invalid.value.title == "Input validation failed"
