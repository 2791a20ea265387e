"""Models through the gateway: create, read, list, change, delete, and the hardware catalog."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from cogplane.common.contracts import accounts as c

Actor = tuple[str, c.Caller]
MakeActor = Callable[[], Awaitable[Actor]]
Runner = Any  # the conftest's Runner (a test module cannot import the conftest)

BASE = "http://testserver"
LINKS = {
    "github_url": "https://github.com/acme/flux",
    "paper_url": "https://arxiv.org/abs/2401.00001",
    "license_url": "https://www.apache.org/licenses/LICENSE-2.0",
    "cover_image_url": "https://example.com/cover.png",
}


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


def invalid_fields(response: httpx.Response) -> list[str]:
    problem = assert_problem(response, 422)
    assert problem["title"] == "Input validation failed"
    return [f["field"] for f in problem["invalid_fields"]]


def parse_time(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


async def create_model(
    gateway: httpx.AsyncClient, token: str, owner: str, **fields: Any
) -> dict[str, Any]:
    body = {"owner": owner, "name": unique("model"), "visibility": "private", "hardware": "cpu"}
    response = await gateway.post("/v1/models", json=body | fields, headers=auth(token))
    assert response.status_code == 201, response.text
    model: dict[str, Any] = response.json()
    return model


async def get_model(gateway: httpx.AsyncClient, token: str, model: str) -> httpx.Response:
    return await gateway.get(f"/v1/models/{model}", headers=auth(token))


async def create_org(gateway: httpx.AsyncClient, token: str) -> str:
    name = unique("org")
    response = await gateway.post(
        "/v1/organizations", json={"username": name, "name": "Acme"}, headers=auth(token)
    )
    assert response.status_code == 201, response.text
    return name


async def listed(gateway: httpx.AsyncClient, token: str, **params: str) -> list[str]:
    response = await gateway.get("/v1/models", params=params, headers=auth(token))
    assert response.status_code == 200, response.text
    return [f"{m['owner']}/{m['name']}" for m in response.json()["results"]]


# -- create ------------------------------------------------------------------------------------


async def test_create_a_model_answers_replicates_model_object(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    owner, name = me.account.username, unique("flux")
    body = {
        "owner": owner,
        "name": name,
        "visibility": "public",
        "hardware": "gpu-a40-large",
        "description": "Fast image generation",
        **LINKS,
    }

    response = await gateway.post("/v1/models", json=body, headers=auth(token))

    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    model = response.json()
    created_at = parse_time(model.pop("created_at"))
    assert model == {
        "url": f"{BASE}/{owner}/{name}",
        "owner": owner,
        "name": name,
        "description": "Fast image generation",
        "visibility": "public",
        "hardware": "gpu-a40-large",
        **LINKS,
        "run_count": 0,
        "default_example": None,
        "latest_version": None,
    }
    assert abs((datetime.now(created_at.tzinfo) - created_at).total_seconds()) < 60
    again = await get_model(gateway, token, f"{owner}/{name}")
    assert again.status_code == 200
    assert again.json() == response.json()


async def test_create_a_model_with_only_the_required_fields(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()

    model = await create_model(gateway, token, me.account.username, visibility="private")

    assert {k: model[k] for k in ("description", *LINKS)} == dict.fromkeys(("description", *LINKS))
    assert model["visibility"] == "private"
    assert model["hardware"] == "cpu"
    assert model["run_count"] == 0
    assert model["latest_version"] is None


async def test_create_a_model_under_an_organization_you_belong_to(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, _ = await new_user()
    member_token, member = await new_user()
    outsider_token, _ = await new_user()
    org = await create_org(gateway, token)
    added = await gateway.post(
        f"/v1/organizations/{org}/members",
        json={"username": member.account.username},
        headers=auth(token),
    )
    assert added.status_code == 201, added.text

    by_owner = await create_model(gateway, token, org)
    by_member = await create_model(gateway, member_token, org)

    for model in (by_owner, by_member):
        assert model["owner"] == org
        ref = f"{org}/{model['name']}"
        assert (await get_model(gateway, token, ref)).json() == model
        assert (await get_model(gateway, member_token, ref)).json() == model
        assert_problem(await get_model(gateway, outsider_token, ref), 404)


async def test_create_a_model_under_another_account_is_forbidden(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, _ = await new_user()
    other_token, other = await new_user()
    foreign_org = await create_org(gateway, other_token)

    for owner in (other.account.username, foreign_org, unique("nobody")):
        name = unique("model")
        body = {"owner": owner, "name": name, "visibility": "public", "hardware": "cpu"}

        response = await gateway.post("/v1/models", json=body, headers=auth(token))

        problem = assert_problem(response, 403)
        assert problem["title"] == "Forbidden"
        assert owner in problem["detail"]
        assert_problem(await get_model(gateway, other_token, f"{owner}/{name}"), 404)
    assert not [m for m in await listed(gateway, other_token) if m.startswith(f"{foreign_org}/")]


async def test_a_model_name_is_taken_once_per_owner(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    other_token, other = await new_user()
    model = await create_model(gateway, token, me.account.username, description="first")
    body = {
        "owner": me.account.username,
        "name": model["name"],
        "visibility": "public",
        "hardware": "gpu-t4",
        "description": "second",
    }

    again = await gateway.post("/v1/models", json=body, headers=auth(token))

    assert assert_problem(again, 409)["title"] == "Conflict"
    ref = f"{me.account.username}/{model['name']}"
    assert (await get_model(gateway, token, ref)).json() == model
    # The same name under another owner is another model.
    theirs = await create_model(gateway, other_token, other.account.username, name=model["name"])
    assert theirs["name"] == model["name"]


async def test_concurrent_creates_of_one_name_are_conflicts(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    statuses: list[int] = []
    for _ in range(10):  # the race is lost often, not always
        body = {
            "owner": me.account.username,
            "name": unique("race"),
            "visibility": "private",
            "hardware": "cpu",
        }
        responses = await asyncio.gather(
            *(gateway.post("/v1/models", json=body, headers=auth(token)) for _ in range(8))
        )
        statuses.extend(r.status_code for r in responses)

    assert sorted(set(statuses)) == [201, 409]
    assert statuses.count(201) == 10


@pytest.mark.parametrize(
    "name",
    ["Upper", "-leading", "trailing-", "has space", "a/b", "a" * 101, "", ".", "..", "é", "a\tb"],
    ids=[
        "uppercase",
        "leading-dash",
        "trailing-dash",
        "space",
        "slash",
        "101-chars",
        "empty",
        "dot",
        "dot-dot",
        "non-ascii",
        "tab",
    ],
)
async def test_an_invalid_model_name(
    gateway: httpx.AsyncClient, new_user: MakeActor, name: str
) -> None:
    token, me = await new_user()
    body = {"owner": me.account.username, "name": name, "visibility": "private", "hardware": "cpu"}

    response = await gateway.post("/v1/models", json=body, headers=auth(token))

    assert invalid_fields(response) == ["name"]
    assert not [m for m in await listed(gateway, token) if m.startswith(f"{me.account.username}/")]


@pytest.mark.parametrize(
    "name", ["a", "7", "flux.1-dev", "my_model", "_private", "v1.2.3", "a-b_c.d", "x" * 100]
)
async def test_a_valid_model_name(
    gateway: httpx.AsyncClient, new_user: MakeActor, name: str
) -> None:
    token, me = await new_user()

    model = await create_model(gateway, token, me.account.username, name=name)

    assert model["name"] == name
    fetched = await get_model(gateway, token, f"{me.account.username}/{name}")
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["url"] == f"{BASE}/{me.account.username}/{name}"


@pytest.mark.parametrize("hardware", ["gpu-h100-8x", "gpu-2x-l40s", "gpu-a100-large"])
async def test_any_catalog_hardware_is_accepted(
    gateway: httpx.AsyncClient, new_user: MakeActor, hardware: str
) -> None:
    token, me = await new_user()

    model = await create_model(gateway, token, me.account.username, hardware=hardware)

    assert model["hardware"] == hardware


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"hardware": "gpu-z9000"}, "hardware"),
        ({"hardware": ""}, "hardware"),
        ({"hardware": "CPU"}, "hardware"),
        ({"visibility": "unlisted"}, "visibility"),
        ({"visibility": None}, "visibility"),
        ({"owner": None}, "owner"),
        ({"owner": "o" * 65}, "owner"),
        ({"description": 5}, "description"),
        ({"github_url": "g" * 501}, "github_url"),
        ({"cover_image_url": ["x"]}, "cover_image_url"),
    ],
    ids=[
        "unknown-hardware",
        "empty-hardware",
        "uppercase-hardware",
        "bad-visibility",
        "null-visibility",
        "null-owner",
        "long-owner",
        "numeric-description",
        "long-github-url",
        "list-cover-image",
    ],
)
async def test_an_invalid_model_field(
    gateway: httpx.AsyncClient, new_user: MakeActor, changes: dict[str, Any], field: str
) -> None:
    token, me = await new_user()
    name = unique("model")
    body = {"owner": me.account.username, "name": name, "visibility": "private", "hardware": "cpu"}

    response = await gateway.post("/v1/models", json=body | changes, headers=auth(token))

    assert invalid_fields(response) == [field]
    assert_problem(await get_model(gateway, token, f"{me.account.username}/{name}"), 404)


@pytest.mark.parametrize("missing", ["owner", "name", "visibility", "hardware"])
async def test_a_required_model_field_is_missing(
    gateway: httpx.AsyncClient, new_user: MakeActor, missing: str
) -> None:
    token, me = await new_user()
    body = {"owner": me.account.username, "name": unique("m"), "visibility": "public"}
    body["hardware"] = "cpu"
    del body[missing]

    response = await gateway.post("/v1/models", json=body, headers=auth(token))

    assert invalid_fields(response) == [missing]
    assert f"- {missing}: " in response.json()["detail"]


async def test_all_required_fields_missing_are_each_named(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, _ = await new_user()

    response = await gateway.post("/v1/models", json={}, headers=auth(token))

    assert sorted(invalid_fields(response)) == ["hardware", "name", "owner", "visibility"]


async def test_models_need_a_token(gateway: httpx.AsyncClient, new_user: MakeActor) -> None:
    token, me = await new_user()
    model = await create_model(gateway, token, me.account.username, visibility="public")
    ref = f"{me.account.username}/{model['name']}"
    body = {"owner": me.account.username, "name": unique("m"), "visibility": "public"}

    for response in (
        await gateway.get("/v1/models"),
        await gateway.get(f"/v1/models/{ref}"),
        await gateway.post("/v1/models", json=body | {"hardware": "cpu"}),
        await gateway.patch(f"/v1/models/{ref}", json={"description": "x"}),
        await gateway.delete(f"/v1/models/{ref}"),
        await gateway.get(f"/v1/models/{ref}", headers=auth("r8_" + "x" * 37)),
    ):
        assert assert_problem(response, 401)["title"] == "Unauthenticated"
    assert (await get_model(gateway, token, ref)).json() == model


# -- read and list -----------------------------------------------------------------------------


async def test_a_private_model_of_someone_else_looks_missing(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    other_token, _ = await new_user()
    name = unique("secret")
    ref = f"{me.account.username}/{name}"
    before = await get_model(gateway, other_token, ref)

    await create_model(gateway, token, me.account.username, name=name, visibility="private")
    after = await get_model(gateway, other_token, ref)

    assert assert_problem(before, 404)["title"] == "Not found"
    assert after.status_code == 404
    assert after.json() == before.json()
    assert after.headers["content-type"] == before.headers["content-type"]
    assert ref not in await listed(gateway, other_token)


async def test_a_public_model_is_visible_to_everyone(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    other_token, _ = await new_user()
    model = await create_model(gateway, token, me.account.username, visibility="public")
    ref = f"{me.account.username}/{model['name']}"

    response = await get_model(gateway, other_token, ref)

    assert response.status_code == 200
    assert response.json() == model
    assert ref in await listed(gateway, other_token)


async def test_the_listing_shows_public_own_and_organization_models(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    other_token, other = await new_user()
    org = await create_org(gateway, token)
    mine = me.account.username
    private = await create_model(gateway, token, mine, visibility="private")
    public = await create_model(gateway, token, mine, visibility="public")
    org_private = await create_model(gateway, token, org, visibility="private")
    theirs = await create_model(gateway, other_token, other.account.username)
    refs = {
        "private": f"{mine}/{private['name']}",
        "public": f"{mine}/{public['name']}",
        "org": f"{org}/{org_private['name']}",
        "theirs": f"{other.account.username}/{theirs['name']}",
    }

    mine_listed = await listed(gateway, token)
    theirs_listed = await listed(gateway, other_token)

    assert {refs["private"], refs["public"], refs["org"]} <= set(mine_listed)
    assert refs["theirs"] not in mine_listed
    assert {refs["public"], refs["theirs"]} <= set(theirs_listed)
    assert refs["private"] not in theirs_listed
    assert refs["org"] not in theirs_listed
    # Newest first by default.
    ours = [r for r in mine_listed if r in refs.values()]
    assert ours == [refs["org"], refs["public"], refs["private"]]


async def test_the_listing_is_a_page_of_model_objects(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    model = await create_model(gateway, token, me.account.username, description="d", **LINKS)

    response = await gateway.get("/v1/models", headers=auth(token))

    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"next", "previous", "results"}
    assert page["previous"] is None
    assert page["results"][0] == model
    for result in page["results"]:
        assert result["url"].startswith(f"{BASE}/")
        parse_time(result["created_at"])


@dataclass(frozen=True)
class Crowd:
    """Someone with one more private model than fits on a page."""

    token: str
    refs: frozenset[str]


@pytest.fixture(scope="module")
async def crowd(gateway: httpx.AsyncClient, new_user: MakeActor) -> Crowd:
    token, me = await new_user()
    mine = me.account.username
    semaphore = asyncio.Semaphore(16)

    async def make(i: int) -> str:
        async with semaphore:
            model = await create_model(gateway, token, mine, name=f"m{i:03d}-{uuid.uuid4().hex}")
            return f"{mine}/{model['name']}"

    return Crowd(token, frozenset(await asyncio.gather(*(make(i) for i in range(101)))))


async def walk(gateway: httpx.AsyncClient, token: str, url: str) -> list[dict[str, Any]]:
    """Every model of a listing, following ``next`` as the clients do (verbatim)."""
    seen: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url is not None:
        assert next_url.startswith(f"{BASE}/v1/models?"), next_url
        response = await gateway.get(next_url, headers=auth(token))
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["previous"] is None or page["previous"].startswith(BASE)
        if page["next"] is not None:
            assert len(page["results"]) == 100
            assert "cursor=" in page["next"]
        seen.extend(page["results"])
        next_url = page["next"]
        assert len(seen) < 100_000
    return seen


@pytest.mark.parametrize("direction", ["desc", "asc"])
async def test_the_listing_pages_with_absolute_next_urls(
    gateway: httpx.AsyncClient, crowd: Crowd, direction: str
) -> None:
    url = f"{BASE}/v1/models?sort_by=model_created_at&sort_direction={direction}"
    first = (await gateway.get(url, headers=auth(crowd.token))).json()

    seen = await walk(gateway, crowd.token, url)

    assert len(first["results"]) == 100
    assert f"sort_direction={direction}" in first["next"]
    refs = [f"{m['owner']}/{m['name']}" for m in seen]
    assert len(refs) == len(set(refs))
    assert crowd.refs <= set(refs)
    times = [parse_time(m["created_at"]) for m in seen]
    assert times == sorted(times, reverse=direction == "desc")


async def test_the_next_url_keeps_the_query_intact(
    gateway: httpx.AsyncClient, crowd: Crowd
) -> None:
    response = await gateway.get(
        "/v1/models", params={"sort_direction": "desc", "tag": "a#b"}, headers=auth(crowd.token)
    )

    next_url = httpx.URL(response.json()["next"])
    assert next_url.params.get("tag") == "a#b"
    assert next_url.params.get("cursor")


async def test_the_listing_sorts_ascending(gateway: httpx.AsyncClient, new_user: MakeActor) -> None:
    token, me = await new_user()
    await create_model(gateway, token, me.account.username)
    await create_model(gateway, token, me.account.username)

    response = await gateway.get(
        "/v1/models", params={"sort_direction": "asc"}, headers=auth(token)
    )

    assert response.status_code == 200, response.text
    times = [parse_time(m["created_at"]) for m in response.json()["results"]]
    assert times == sorted(times)


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_CURSORS = {
    "not-base64": "!!!not-a-cursor!!!",
    "not-json": _cursor(b"hello world"),
    "not-utf8": _cursor(b"\xff\xfe\xfd"),
    "json-list": _cursor(b"[1, 2]"),
    "missing-id": _cursor(b'{"t": "2024-01-01T00:00:00+00:00"}'),
    "missing-time": _cursor(b'{"id": "abc"}'),
    "bad-time": _cursor(b'{"t": "yesterday", "id": "abc"}'),
    "numeric-time": _cursor(b'{"t": 5, "id": "abc"}'),
}


@pytest.mark.parametrize("cursor", list(BAD_CURSORS.values()), ids=list(BAD_CURSORS))
async def test_a_cursor_we_did_not_make_is_invalid(
    gateway: httpx.AsyncClient, new_user: MakeActor, cursor: str
) -> None:
    token, _ = await new_user()

    response = await gateway.get("/v1/models", params={"cursor": cursor}, headers=auth(token))

    assert invalid_fields(response) == ["cursor"]


async def test_an_overlong_cursor_is_invalid(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, _ = await new_user()

    response = await gateway.get("/v1/models", params={"cursor": "a" * 501}, headers=auth(token))

    assert invalid_fields(response) == ["cursor"]


CRAFTED_CURSORS = {
    "nul-in-id": _cursor(b'{"t": "2024-01-01T00:00:00+00:00", "id": "a\\u0000b"}'),
    "year-zero-in-utc": _cursor(b'{"t": "0001-01-01T00:00:00+14:00", "id": "abc"}'),
    "year-10000-in-utc": _cursor(b'{"t": "9999-12-31T23:59:59-14:00", "id": "abc"}'),
}


@pytest.mark.parametrize("cursor", list(CRAFTED_CURSORS.values()), ids=list(CRAFTED_CURSORS))
async def test_a_crafted_cursor_is_invalid_not_a_server_error(
    gateway: httpx.AsyncClient, new_user: MakeActor, cursor: str
) -> None:
    token, _ = await new_user()

    response = await gateway.get("/v1/models", params={"cursor": cursor}, headers=auth(token))

    assert invalid_fields(response) == ["cursor"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort_by": "name"}, "sort_by"),
        ({"sort_by": ""}, "sort_by"),
        ({"sort_direction": "up"}, "sort_direction"),
        ({"sort_direction": "DESC"}, "sort_direction"),
    ],
    ids=["sort-by-name", "sort-by-empty", "direction-up", "direction-uppercase"],
)
async def test_an_invalid_sort(
    gateway: httpx.AsyncClient, new_user: MakeActor, params: dict[str, str], field: str
) -> None:
    token, _ = await new_user()

    response = await gateway.get("/v1/models", params=params, headers=auth(token))

    assert invalid_fields(response) == [field]


async def test_a_missing_model(gateway: httpx.AsyncClient, new_user: MakeActor) -> None:
    token, me = await new_user()

    for ref in (f"{me.account.username}/{unique('ghost')}", f"{unique('nobody')}/x"):
        problem = assert_problem(await get_model(gateway, token, ref), 404)
        assert problem["title"] == "Not found"


# -- update --------------------------------------------------------------------------------------


async def patch(
    gateway: httpx.AsyncClient, token: str, ref: str, body: dict[str, Any]
) -> httpx.Response:
    return await gateway.patch(f"/v1/models/{ref}", json=body, headers=auth(token))


async def test_patch_changes_only_the_fields_sent(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    model = await create_model(
        gateway, token, me.account.username, description="old", visibility="private", **LINKS
    )
    ref = f"{me.account.username}/{model['name']}"

    described = await patch(gateway, token, ref, {"description": "new"})

    assert described.status_code == 200, described.text
    assert described.json() == model | {"description": "new"}
    cleared = await patch(gateway, token, ref, {"github_url": None, "paper_url": None})
    assert cleared.status_code == 200, cleared.text
    expected = model | {"description": "new", "github_url": None, "paper_url": None}
    assert cleared.json() == expected
    nothing = await patch(gateway, token, ref, {})
    assert nothing.status_code == 200
    assert nothing.json() == expected
    assert (await get_model(gateway, token, ref)).json() == expected


async def test_patch_changes_visibility_and_hardware(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    other_token, _ = await new_user()
    model = await create_model(gateway, token, me.account.username, visibility="private")
    ref = f"{me.account.username}/{model['name']}"

    response = await patch(gateway, token, ref, {"visibility": "public", "hardware": "gpu-l40s"})

    assert response.status_code == 200, response.text
    assert response.json() == model | {"visibility": "public", "hardware": "gpu-l40s"}
    assert (await get_model(gateway, other_token, ref)).json() == response.json()
    hidden = await patch(gateway, token, ref, {"visibility": "private"})
    assert hidden.json()["visibility"] == "private"
    assert_problem(await get_model(gateway, other_token, ref), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"hardware": "gpu-z9000"}, "hardware"),
        ({"visibility": "unlisted"}, "visibility"),
        ({"bogus": 1}, "bogus"),
        ({"owner": "someone-else"}, "owner"),
        ({"name": "renamed"}, "name"),
        ({"run_count": 1000}, "run_count"),
        ({"description": "ok", "license_url": "l" * 501}, "license_url"),
    ],
    ids=[
        "unknown-hardware",
        "bad-visibility",
        "unknown-field",
        "owner",
        "name",
        "run-count",
        "long-license-url",
    ],
)
async def test_an_invalid_patch_changes_nothing(
    gateway: httpx.AsyncClient, new_user: MakeActor, body: dict[str, Any], field: str
) -> None:
    token, me = await new_user()
    model = await create_model(gateway, token, me.account.username, description="kept")
    ref = f"{me.account.username}/{model['name']}"

    response = await patch(gateway, token, ref, body)

    assert invalid_fields(response) == [field]
    assert (await get_model(gateway, token, ref)).json() == model


async def test_only_owners_patch(gateway: httpx.AsyncClient, new_user: MakeActor) -> None:
    token, me = await new_user()
    other_token, _ = await new_user()
    public = await create_model(gateway, token, me.account.username, visibility="public")
    private = await create_model(gateway, token, me.account.username, visibility="private")
    public_ref = f"{me.account.username}/{public['name']}"
    private_ref = f"{me.account.username}/{private['name']}"

    on_public = await patch(gateway, other_token, public_ref, {"description": "hacked"})
    on_private = await patch(gateway, other_token, private_ref, {"description": "hacked"})
    on_missing = await patch(gateway, token, f"{me.account.username}/{unique('x')}", {})

    assert assert_problem(on_public, 403)["title"] == "Forbidden"
    assert_problem(on_private, 404)
    assert_problem(on_missing, 404)
    assert (await get_model(gateway, token, public_ref)).json() == public
    assert (await get_model(gateway, token, private_ref)).json() == private


async def test_organization_members_patch_organization_models(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, _ = await new_user()
    member_token, member = await new_user()
    org = await create_org(gateway, token)
    await gateway.post(
        f"/v1/organizations/{org}/members",
        json={"username": member.account.username},
        headers=auth(token),
    )
    model = await create_model(gateway, token, org)

    response = await patch(gateway, member_token, f"{org}/{model['name']}", {"description": "m"})

    assert response.status_code == 200, response.text
    assert response.json()["description"] == "m"


# -- delete --------------------------------------------------------------------------------------


async def test_delete_a_private_model_without_versions(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    model = await create_model(gateway, token, me.account.username, visibility="private")
    ref = f"{me.account.username}/{model['name']}"

    response = await gateway.delete(f"/v1/models/{ref}", headers=auth(token))

    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await get_model(gateway, token, ref), 404)
    assert ref not in await listed(gateway, token)
    again = await gateway.delete(f"/v1/models/{ref}", headers=auth(token))
    assert_problem(again, 404)
    # The name is free again.
    recreated = await create_model(gateway, token, me.account.username, name=model["name"])
    assert recreated["name"] == model["name"]


async def test_a_public_model_cannot_be_deleted(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    model = await create_model(gateway, token, me.account.username, visibility="public")
    ref = f"{me.account.username}/{model['name']}"

    response = await gateway.delete(f"/v1/models/{ref}", headers=auth(token))

    assert assert_problem(response, 409)["title"] == "Conflict"
    assert (await get_model(gateway, token, ref)).json() == model


async def test_a_private_model_with_versions_cannot_be_deleted(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    model = await create_model(gateway, token, me.account.username, visibility="private")
    ref = f"{me.account.username}/{model['name']}"
    await runner.release(token, ref)

    response = await gateway.delete(f"/v1/models/{ref}", headers=auth(token))

    assert assert_problem(response, 409)["title"] == "Conflict"
    assert (await get_model(gateway, token, ref)).json()["latest_version"] is not None


async def test_deleting_a_model_with_only_a_failed_build_deletes_the_build(
    gateway: httpx.AsyncClient, new_user: MakeActor, runner: Runner
) -> None:
    token, me = await new_user()
    model = await create_model(gateway, token, me.account.username, visibility="private")
    ref = f"{me.account.username}/{model['name']}"
    pushed = await runner.push(token, ref)
    build_id = pushed.json()["id"]
    await runner.finish(build_id, error="pip install failed")
    assert (await runner.finished(token, build_id))["status"] == "failed"

    response = await gateway.delete(f"/v1/models/{ref}", headers=auth(token))

    assert response.status_code == 204, response.text
    gone = await gateway.get(f"/v1/builds/{build_id}", headers=auth(token))
    assert_problem(gone, 404)


async def test_only_owners_delete(gateway: httpx.AsyncClient, new_user: MakeActor) -> None:
    token, me = await new_user()
    other_token, _ = await new_user()
    public = await create_model(gateway, token, me.account.username, visibility="public")
    private = await create_model(gateway, token, me.account.username, visibility="private")

    on_public = await gateway.delete(
        f"/v1/models/{me.account.username}/{public['name']}", headers=auth(other_token)
    )
    on_private = await gateway.delete(
        f"/v1/models/{me.account.username}/{private['name']}", headers=auth(other_token)
    )

    assert_problem(on_public, 403)
    assert_problem(on_private, 404)
    for model in (public, private):
        ref = f"{me.account.username}/{model['name']}"
        assert (await get_model(gateway, token, ref)).json() == model


# -- hardware ------------------------------------------------------------------------------------

EXPECTED_SKUS = {
    "cpu",
    "gpu-t4",
    "gpu-a40-small",
    "gpu-a40-large",
    "gpu-a40-large-2x",
    "gpu-a40-large-4x",
    "gpu-a40-large-8x",
    "gpu-l40s",
    "gpu-2x-l40s",
    "gpu-4x-l40s",
    "gpu-8x-l40s",
    "gpu-a100-large",
    "gpu-a100-large-2x",
    "gpu-a100-large-4x",
    "gpu-a100-large-8x",
    "gpu-h100",
    "gpu-h100-2x",
    "gpu-h100-4x",
    "gpu-h100-8x",
}


async def test_hardware_is_a_bare_list_of_skus(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, _ = await new_user()

    response = await gateway.get("/v1/hardware", headers=auth(token))

    assert response.status_code == 200, response.text
    hardware = response.json()
    assert isinstance(hardware, list)
    assert all(set(h) == {"sku", "name"} for h in hardware)
    assert {h["sku"] for h in hardware} == EXPECTED_SKUS
    assert len(hardware) == len(EXPECTED_SKUS)
    names = {h["sku"]: h["name"] for h in hardware}
    assert names["cpu"] == "CPU"
    assert names["gpu-t4"] == "Nvidia T4 GPU"
    assert names["gpu-a40-small"] == "Nvidia A40 GPU"
    assert names["gpu-a40-large"] == "Nvidia A40 (Large) GPU"
    assert hardware[:4] == [
        {"sku": "cpu", "name": "CPU"},
        {"sku": "gpu-t4", "name": "Nvidia T4 GPU"},
        {"sku": "gpu-a40-small", "name": "Nvidia A40 GPU"},
        {"sku": "gpu-a40-large", "name": "Nvidia A40 (Large) GPU"},
    ]


async def test_hardware_needs_a_token(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/v1/hardware")

    problem = assert_problem(response, 401)
    assert problem["detail"] == "You did not pass an authentication token"


async def test_every_listed_sku_can_host_a_model(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, me = await new_user()
    hardware = (await gateway.get("/v1/hardware", headers=auth(token))).json()

    for entry in hardware:
        model = await create_model(gateway, token, me.account.username, hardware=entry["sku"])
        assert model["hardware"] == entry["sku"]
