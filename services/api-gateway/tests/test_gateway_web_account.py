"""The account page: tokens shown once and revoked, organizations and members, the default owner,
CSRF on each of its forms, and the flags of the cookies it sets."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from cogplane.common.bus import Bus
from cogplane.common.contracts import accounts as c
from cogplane.common.contracts.models import Viewer
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres
from cogplane.common.testing.apps import running
from cogplane.common.testing.wait import eventually
from cogplane.gateway.app import create_app as create_gateway
from cogplane.gateway.config import GatewaySettings
from cogplane.gateway.web.pages.account import OWNER_COOKIE, default_owner
from cogplane.gateway.web.session import COOKIE

Actor = tuple[str, c.Caller]
NewActor = Callable[[], Awaitable[Actor]]
HTML = {"Accept": "text/html"}
SECRET = re.compile(r'<code id="new-token-secret" class="secret">([^<]+)</code>')
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


class Browser:
    """A browser of the web app: its own cookie jar, the CSRF token of its latest page."""

    def __init__(self, app: FastAPI, base_url: str = "http://testserver") -> None:
        transport = httpx.ASGITransport(app=app)
        self.http = httpx.AsyncClient(transport=transport, base_url=base_url)
        self.csrf = ""

    async def sign_in(self, token: str) -> httpx.Response:
        shown = await self.http.get("/login", headers=HTML)
        nonce = re.search(r'name="nonce" value="([^"]+)"', shown.text)
        assert nonce is not None  # the sign-in form's guard against login CSRF
        data = {"token": token, "nonce": nonce.group(1)}
        response = await self.http.post("/login", data=data, headers=HTML)
        assert response.status_code == 303, response.text
        await self.get("/account")
        return response

    async def get(self, path: str) -> httpx.Response:
        response = await self.http.get(path, headers=HTML)
        if found := CSRF.search(response.text):
            self.csrf = found.group(1)
        return response

    async def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        body = {"csrf_token": self.csrf, **(data or {})}
        return await self.http.post(path, data=body, headers=HTML)

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, path, headers={"X-CSRF-Token": self.csrf}, **kwargs)


@pytest.fixture(scope="module")
async def web(
    postgres: EmbeddedPostgres, nats_server: EmbeddedNats, registry: httpx.AsyncClient
) -> AsyncIterator[FastAPI]:
    """A gateway of this module's own (the browsers need the app, not a shared client)."""
    app = create_gateway(GatewaySettings(database_url=postgres.url, nats_url=nats_server.url))
    async with running(app):
        yield app


@pytest.fixture(scope="module")
async def https_web(
    postgres: EmbeddedPostgres, nats_server: EmbeddedNats, registry: httpx.AsyncClient
) -> AsyncIterator[FastAPI]:
    """A gateway whose public URL is https: its cookies must be Secure."""
    settings = GatewaySettings(
        database_url=postgres.url, nats_url=nats_server.url, public_url="https://cogplane.example"
    )
    app = create_gateway(settings)
    async with running(app):
        yield app


async def signed_in(web: FastAPI, new_user: NewActor) -> tuple[Browser, Actor]:
    actor = await new_user()
    browser = Browser(web)
    await browser.sign_in(actor[0])
    return browser, actor


async def bearer(web: FastAPI, token: str) -> int:
    """The status of ``GET /v1/account`` with ``token`` (no cookies)."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web), base_url="http://testserver"
    ) as http:
        response = await http.get("/v1/account", headers={"Authorization": f"Bearer {token}"})
        return response.status_code


async def token_names(browser: Browser) -> list[str]:
    return [t["name"] for t in (await browser.api("GET", "/v1/tokens")).json()["results"]]


# -- tokens -------------------------------------------------------------------------------------


async def test_the_page_lists_tokens_and_marks_the_sessions_own(
    web: FastAPI, new_user: NewActor
) -> None:
    browser, (_, caller) = await signed_in(web, new_user)
    shown = await browser.get("/account")
    assert shown.status_code == 200
    assert shown.headers["content-security-policy"].startswith("default-src 'self'")
    assert shown.headers["cache-control"] == "no-store"
    assert f"@{caller.account.username}" in shown.text
    row = re.search(r'<tr data-token-id="([^"]+)">(.*?)</tr>', shown.text, re.S)
    assert row is not None
    assert row.group(1) == caller.token_id
    assert "this session" in row.group(2)
    assert "never" not in row.group(2)  # signing in used it
    assert 'src="/static/account.js"' in shown.text


async def test_a_new_token_is_shown_once_and_works(web: FastAPI, new_user: NewActor) -> None:
    browser, _ = await signed_in(web, new_user)
    made = await browser.post("/account/tokens", {"name": "laptop"})
    assert made.status_code == 201
    secret = SECRET.search(made.text)
    assert secret is not None
    assert "you won't see it again" in html.unescape(made.text)
    assert 'data-copy="#new-token-secret"' in made.text
    assert await bearer(web, secret.group(1)) == 200
    again = await browser.get("/account")
    assert secret.group(1) not in again.text
    assert "laptop" in again.text
    assert "laptop" in await token_names(browser)


async def test_a_token_needs_a_name(web: FastAPI, new_user: NewActor) -> None:
    browser, _ = await signed_in(web, new_user)
    before = await token_names(browser)
    refused = await browser.post("/account/tokens", {"name": "   "})
    assert refused.status_code == 422
    assert 'id="token-name-error"' in refused.text
    assert 'aria-invalid="true"' in refused.text
    long = await browser.post("/account/tokens", {"name": "x" * 101})
    assert long.status_code == 422
    assert await token_names(browser) == before


async def test_revoking_asks_first_then_the_token_stops_working(
    web: FastAPI, new_user: NewActor
) -> None:
    browser, _ = await signed_in(web, new_user)
    made = await browser.post("/account/tokens", {"name": "ci"})
    secret = SECRET.search(made.text)
    assert secret is not None
    tokens = (await browser.api("GET", "/v1/tokens")).json()["results"]
    token_id = next(t["id"] for t in tokens if t["name"] == "ci")
    path = f"/account/tokens/{token_id}/revoke"
    asked = await browser.post(path)
    assert asked.status_code == 200
    assert "Revoke the token “ci”" in html.unescape(asked.text)
    assert 'name="confirm" value="yes"' in asked.text
    assert await bearer(web, secret.group(1)) == 200
    done = await browser.post(path, {"confirm": "yes"})
    assert done.status_code == 303
    assert done.headers["location"] == "/account?done=token-revoked#tokens"
    assert await bearer(web, secret.group(1)) == 401
    after = await browser.get(done.headers["location"])
    assert "Token revoked" in after.text
    assert "ci" not in await token_names(browser)
    # Someone else's token, or one already revoked, is not found.
    assert (await browser.post(path, {"confirm": "yes"})).status_code == 404


async def test_revoking_the_sessions_token_signs_out(web: FastAPI, new_user: NewActor) -> None:
    browser, (token, caller) = await signed_in(web, new_user)
    asked = await browser.post(f"/account/tokens/{caller.token_id}/revoke")
    assert "you will be signed out" in asked.text
    out = await browser.post(f"/account/tokens/{caller.token_id}/revoke", {"confirm": "yes"})
    assert out.status_code == 200
    assert "signed out" in out.text
    assert 'action="/logout"' not in out.text  # no signed-in header any more
    assert f"{COOKIE}=" in out.headers["set-cookie"]
    assert await bearer(web, token) == 401
    following = await browser.get("/account")
    assert following.status_code == 303
    assert following.headers["location"] == "/login?next=/account"


async def test_a_token_revoked_elsewhere_ends_the_session(
    web: FastAPI, new_user: NewActor, bus: Bus
) -> None:
    browser, (_, caller) = await signed_in(web, new_user)
    revoke = c.RevokeToken(account_id=caller.account.id, token_id=caller.token_id)
    await bus.request(c.REVOKE_TOKEN, revoke)

    async def sent_to_sign_in() -> bool:
        return (await browser.get("/account")).status_code == 303

    await eventually(sent_to_sign_in, timeout=10)
    posted = await browser.post("/account/tokens", {"name": "x"})
    assert posted.status_code == 303
    assert posted.headers["location"] == "/login?next=/account"


# -- organizations ------------------------------------------------------------------------------


async def test_organizations_members_and_roles(web: FastAPI, new_user: NewActor) -> None:
    owner, (_, owner_caller) = await signed_in(web, new_user)
    member, (_, member_caller) = await signed_in(web, new_user)
    stranger, _ = await signed_in(web, new_user)
    org = f"team-{owner_caller.account.username[-10:]}"
    made = await owner.post("/account/organizations", {"username": org, "name": "The Team"})
    assert made.status_code == 303
    assert made.headers["location"] == f"/account/organizations/{org}?done=org-created"
    page = await owner.get(made.headers["location"])
    assert page.status_code == 200
    assert "Organization created" in page.text
    assert "The Team" in page.text
    assert "last owner" in page.text
    listed = await owner.get("/account")
    assert f'href="/account/organizations/{org}"' in listed.text
    # Owners add members by username; mistakes are shown next to the field.
    added = await owner.post(
        f"/account/organizations/{org}/members", {"username": member_caller.account.username}
    )
    assert added.status_code == 303
    for wrong, status in (("Bad Name", 422), ("no-such-user-xyz", 404), (org, 404)):
        refused = await owner.post(f"/account/organizations/{org}/members", {"username": wrong})
        assert refused.status_code == status, wrong
        assert 'id="member-username-error"' in refused.text
    again = await owner.post(
        f"/account/organizations/{org}/members", {"username": member_caller.account.username}
    )
    assert again.status_code == 409
    # A member sees the organization and may leave, but not add or remove others.
    seen = await member.get(f"/account/organizations/{org}")
    assert seen.status_code == 200
    assert member_caller.account.username in seen.text
    assert "Add a member" not in seen.text
    assert f"/members/{owner_caller.account.username}/remove" not in seen.text
    forced = await member.post(
        f"/account/organizations/{org}/members/{owner_caller.account.username}/remove",
        {"confirm": "yes"},
    )
    assert forced.status_code == 403
    # Strangers: not found, as in the API.
    assert (await stranger.get(f"/account/organizations/{org}")).status_code == 404
    assert (await stranger.api("GET", f"/v1/organizations/{org}/members")).status_code == 404
    hidden = await stranger.post(f"/account/organizations/{org}/members", {"username": "x"})
    assert hidden.status_code == 404
    # The owner removes the member (after confirming); the last owner cannot leave.
    removal = f"/account/organizations/{org}/members/{member_caller.account.username}/remove"
    asked = await owner.post(removal)
    assert "They lose access" in asked.text
    removed = await owner.post(removal, {"confirm": "yes"})
    assert removed.status_code == 303
    assert (await member.get(f"/account/organizations/{org}")).status_code == 404
    alone = await owner.post(
        f"/account/organizations/{org}/members/{owner_caller.account.username}/remove",
        {"confirm": "yes"},
    )
    assert alone.status_code == 409
    assert "at least one owner" in alone.text


async def test_a_member_can_leave(web: FastAPI, new_user: NewActor) -> None:
    owner, (_, owner_caller) = await signed_in(web, new_user)
    member, (_, member_caller) = await signed_in(web, new_user)
    org = f"crew-{owner_caller.account.username[-10:]}"
    await owner.post("/account/organizations", {"username": org, "name": "Crew"})
    name = member_caller.account.username
    await owner.post(f"/account/organizations/{org}/members", {"username": name})
    page = await member.get(f"/account/organizations/{org}")
    assert f"/members/{name}/remove" in page.text
    asked = await member.post(f"/account/organizations/{org}/members/{name}/remove")
    assert "Leave" in asked.text
    left = await member.post(
        f"/account/organizations/{org}/members/{name}/remove", {"confirm": "yes"}
    )
    assert left.status_code == 303
    assert left.headers["location"] == "/account?done=left#organizations"


async def test_organization_names_are_checked(web: FastAPI, new_user: NewActor) -> None:
    browser, (_, caller) = await signed_in(web, new_user)
    for username, name, field in (
        ("Not Valid", "x", "org-username-error"),
        ("-dash", "x", "org-username-error"),
        ("ok-name", "", "org-name-error"),
        (caller.account.username, "Taken", "org-username-error"),
    ):
        refused = await browser.post("/account/organizations", {"username": username, "name": name})
        assert refused.status_code in (409, 422), username
        assert f'id="{field}"' in refused.text
        assert '<details class="card create-org" open>' in refused.text
    taken = await browser.post(
        "/account/organizations", {"username": caller.account.username, "name": "Taken"}
    )
    assert taken.status_code == 409
    assert (await browser.api("GET", "/v1/organizations")).json()["results"] == []


# -- the default owner ------------------------------------------------------------------------


async def test_the_default_owner_is_one_of_yours(web: FastAPI, new_user: NewActor) -> None:
    browser, (_, caller) = await signed_in(web, new_user)
    org = f"own-{caller.account.username[-10:]}"
    await browser.post("/account/organizations", {"username": org, "name": "Own"})
    await browser.get("/account")
    chosen = await browser.post("/account/owner", {"owner": org})
    assert chosen.status_code == 303
    cookie = chosen.headers["set-cookie"]
    assert cookie.startswith(f"{OWNER_COOKIE}={org};")
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    shown = await browser.get("/account")
    assert f'<option value="{org}" selected>' in shown.text
    refused = await browser.post("/account/owner", {"owner": "someone-else"})
    assert refused.status_code == 422
    assert 'id="owner-error"' in refused.text


def test_default_owner_ignores_owners_you_cannot_act_as() -> None:
    viewer = Viewer(account_id="a", username="alice", organizations=["team"])

    def request(cookie: str | None) -> Request:
        headers = [(b"cookie", f"{OWNER_COOKIE}={cookie}".encode())] if cookie else []
        return Request({"type": "http", "headers": headers})

    assert default_owner(request(None), viewer) == "alice"
    assert default_owner(request("team"), viewer) == "team"
    assert default_owner(request("other"), viewer) == "alice"


# -- CSRF and cookies ---------------------------------------------------------------------------


async def test_every_account_form_refuses_a_missing_or_wrong_csrf_token(
    web: FastAPI, new_user: NewActor
) -> None:
    owner, (_, owner_caller) = await signed_in(web, new_user)
    member, (_, member_caller) = await signed_in(web, new_user)
    org = f"csrf-{owner_caller.account.username[-10:]}"
    await owner.post("/account/organizations", {"username": org, "name": "C"})
    name = member_caller.account.username
    await owner.post(f"/account/organizations/{org}/members", {"username": name})
    made = await owner.post("/account/tokens", {"name": "keep"})
    assert made.status_code == 201
    keep = next(
        t["id"]
        for t in (await owner.api("GET", "/v1/tokens")).json()["results"]
        if t["name"] == "keep"
    )

    async def state() -> tuple[Any, ...]:
        tokens = (await owner.api("GET", "/v1/tokens")).json()["results"]
        orgs = (await owner.api("GET", "/v1/organizations")).json()["results"]
        members = (await owner.api("GET", f"/v1/organizations/{org}/members")).json()
        return sorted(t["id"] for t in tokens), orgs, members

    before = await state()
    forms = [
        ("/account/tokens", {"name": "forged"}),
        (f"/account/tokens/{keep}/revoke", {"confirm": "yes"}),
        (f"/account/tokens/{owner_caller.token_id}/revoke", {"confirm": "yes"}),
        ("/account/organizations", {"username": f"x{org}", "name": "Forged"}),
        (f"/account/organizations/{org}/members", {"username": name}),
        (f"/account/organizations/{org}/members/{name}/remove", {"confirm": "yes"}),
        ("/account/owner", {"owner": org}),
    ]
    for path, data in forms:
        for csrf in (None, "", "forged", owner.csrf[:-1] + "x"):
            body = data if csrf is None else {**data, "csrf_token": csrf}
            refused = await owner.http.post(path, data=body, headers=HTML)
            assert refused.status_code == 403, (path, csrf)
            assert "set-cookie" not in refused.headers
        # Another session's CSRF token does not fit this session.
        crossed = await owner.http.post(path, data={**data, "csrf_token": member.csrf})
        assert crossed.status_code == 403, path
    assert await state() == before


@pytest.mark.parametrize("secure", [False, True])
async def test_cookies_are_httponly_lax_and_secure_behind_https(
    web: FastAPI, https_web: FastAPI, new_user: NewActor, secure: bool
) -> None:
    token, caller = await new_user()
    # (A browser sends a Secure cookie back over https only.)
    browser = Browser(https_web, "https://testserver") if secure else Browser(web)
    session = (await browser.sign_in(token)).headers["set-cookie"]
    chosen = await browser.post("/account/owner", {"owner": caller.account.username})
    assert chosen.status_code == 303
    for cookie, name in ((session, COOKIE), (chosen.headers["set-cookie"], OWNER_COOKIE)):
        assert cookie.startswith(f"{name}=")
        assert "HttpOnly" in cookie
        assert "samesite=lax" in cookie.lower()
        assert ("Secure" in cookie) is secure
