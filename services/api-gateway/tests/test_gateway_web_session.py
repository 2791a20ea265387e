"""The web app's sign-in: sessions in a signed HttpOnly cookie, CSRF on every change."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest
from pydantic import SecretStr

from cogplane.common.contracts.accounts import Caller
from cogplane.gateway.web.pages.base import safe_next
from cogplane.gateway.web.session import COOKIE, SessionCodec

NewActor = Callable[[], Awaitable[tuple[str, Caller]]]

HTML = {"Accept": "text/html"}


@pytest.fixture(autouse=True)
def no_cookies_left(gateway: httpx.AsyncClient) -> Iterator[None]:
    """The gateway client is shared by every test: no session may leak into the others."""
    gateway.cookies.clear()
    yield
    gateway.cookies.clear()


async def sign_in_form(gateway: httpx.AsyncClient) -> str:
    """Open the sign-in page as a browser does; the nonce its form carries."""
    shown = await gateway.get("/login", headers=HTML)
    match = re.search(r'name="nonce" value="([^"]+)"', shown.text)
    assert match is not None
    return match.group(1)


def cookie_of(response: httpx.Response) -> str:
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header
    assert "SameSite=lax" in header or "samesite=lax" in header.lower()
    return header.split(";", 1)[0].split("=", 1)[1]


async def test_sign_in_page_and_wrong_tokens(gateway: httpx.AsyncClient) -> None:
    shown = await gateway.get("/login", headers=HTML)
    assert shown.status_code == 200
    assert 'name="token"' in shown.text
    assert shown.headers["content-security-policy"].startswith("default-src 'self'")
    nonce = await sign_in_form(gateway)
    for token, message in (("", "Paste an API token"), ("r8_nope", "That token is not valid")):
        data = {"token": token, "nonce": nonce}
        refused = await gateway.post("/login", data=data, headers=HTML)
        assert refused.status_code == 401
        assert message in refused.text
        assert COOKIE not in refused.headers.get("set-cookie", "")
    # Development sign-in is off unless the gateway allows it.
    assert "/login/dev" not in shown.text
    assert (await gateway.post("/login/dev", headers=HTML)).status_code == 404


async def test_a_session_authenticates_the_api_and_needs_csrf_to_change_things(
    gateway: httpx.AsyncClient, new_user: NewActor
) -> None:
    token, caller = await new_user()
    # Without the nonce of our own sign-in page (another site's form), nobody is signed in.
    gateway.cookies.clear()
    forged_login = await gateway.post("/login", data={"token": token}, headers=HTML)
    assert forged_login.status_code == 403
    assert COOKIE not in forged_login.headers.get("set-cookie", "")
    nonce = await sign_in_form(gateway)
    signed = await gateway.post(
        "/login", data={"token": token, "next": "/models?x=1", "nonce": nonce}, headers=HTML
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/models?x=1"
    cookie = cookie_of(signed)
    jar = {COOKIE: cookie}
    account = await gateway.get("/v1/account", cookies=jar)
    assert account.status_code == 200
    assert account.json()["username"] == caller.account.username
    # A change with the cookie alone (as another site could make the browser send) is refused.
    forged = await gateway.post("/v1/tokens", json={"name": "web"}, cookies=jar)
    assert forged.status_code == 403
    assert "CSRF" in forged.json()["detail"]
    csrf = SessionCodec(SecretStr("cogplane-dev-only-files-signing-key")).csrf(cookie)
    made = await gateway.post(
        "/v1/tokens", json={"name": "web"}, cookies=jar, headers={"X-CSRF-Token": csrf}
    )
    assert made.status_code in (200, 201), made.text
    # A tampered cookie is no session at all.
    tampered = {COOKIE: cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")}
    assert (await gateway.get("/v1/account", cookies=tampered)).status_code == 401
    # Signing out needs the CSRF token too, then clears the cookie.
    assert (await gateway.post("/logout", cookies=jar, headers=HTML)).status_code == 403
    out = await gateway.post("/logout", data={"csrf_token": csrf}, cookies=jar, headers=HTML)
    assert out.status_code == 303
    assert f"{COOKIE}=" in out.headers["set-cookie"]


async def test_pages_send_strangers_to_sign_in(gateway: httpx.AsyncClient) -> None:
    home = await gateway.get("/", headers=HTML)
    assert home.status_code == 303
    assert home.headers["location"] == "/login"
    missing = await gateway.get("/no-such-page", headers=HTML)
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    api_missing = await gateway.get("/v1/no-such-thing")
    assert api_missing.headers["content-type"] == "application/problem+json"


def test_next_stays_on_this_site() -> None:
    assert safe_next("/deployments/dev/x") == "/deployments/dev/x"
    for outside in ("https://evil.example/", "//evil.example/x", "/\\evil", "", None, "models"):
        assert safe_next(outside) == "/models"


def test_expired_and_forged_sessions() -> None:
    codec = SessionCodec(SecretStr("k"))
    cookie = codec.encode("r8_token", "alice", now=1000)
    assert codec.decode(cookie, now=1001) is not None
    assert codec.decode(cookie, now=1000 + 8 * 24 * 3600) is None
    assert SessionCodec(SecretStr("other")).decode(cookie, now=1001) is None
    assert codec.decode("garbage", now=1001) is None
    assert codec.csrf_valid(cookie, codec.csrf(cookie))
    assert not codec.csrf_valid(cookie, None)
    assert not codec.csrf_valid(cookie, codec.csrf(codec.encode("r8_token", "alice", now=1002)))
