"""Sign in (with an API token, or one click under ``make dev``), sign out, the home page."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cogplane.common.contracts.accounts import DEV_BOOTSTRAP, DevBootstrap
from cogplane.common.errors import CogplaneError, Forbidden, NotFound
from cogplane.gateway.deps import BusDep, verify
from cogplane.gateway.web.auth import check_csrf, codec, session_caller, settings_of
from cogplane.gateway.web.render import page
from cogplane.gateway.web.session import COOKIE, MAX_AGE

router = APIRouter(include_in_schema=False)
DEV_USER, DEV_ORG = "dev", "dev-org"
LOGIN_NONCE = "cogplane_login"


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another origin)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/models"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/models"


def signed_in(request: Request, token: str, username: str, next_path: str) -> Response:
    response = RedirectResponse(safe_next(next_path), status_code=303)
    response.set_cookie(
        COOKIE,
        codec(request).encode(token, username),
        max_age=MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=settings_of(request).public_url.startswith("https://"),
        path="/",
    )
    return response


@router.get("/", response_model=None)
async def home(request: Request, bus: BusDep) -> Response:
    caller = await session_caller(request, bus)
    return RedirectResponse("/models" if caller else "/login", status_code=303)


def login_form(
    request: Request, next_path: str, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    """The sign-in page, with a sign-in nonce (cookie + form field) against login CSRF."""
    nonce = request.cookies.get(LOGIN_NONCE) or secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        status_code=status_code,
        next=safe_next(next_path),
        error=error,
        nonce=nonce,
    )
    response.set_cookie(
        LOGIN_NONCE,
        nonce,
        max_age=3600,
        httponly=True,
        samesite="lax",
        secure=settings_of(request).public_url.startswith("https://"),
        path="/login",
    )
    return response


def check_nonce(request: Request, given: str) -> None:
    """Refuse a sign-in that did not come from our own sign-in page (login CSRF)."""
    expected = request.cookies.get(LOGIN_NONCE)
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise Forbidden("This sign-in form has expired; reload the page and try again")


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, bus: BusDep, next: str = "/models") -> HTMLResponse:
    await session_caller(request, bus)
    return login_form(request, next)


@router.post("/login", response_model=None)
async def login(
    request: Request,
    bus: BusDep,
    token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/models",
    nonce: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Sign in with an API token (it is checked like any Bearer token)."""
    request.state.dev_sign_in = settings_of(request).dev_sign_in
    check_nonce(request, nonce)
    token = token.strip()
    try:
        caller = await verify(request, bus, token) if token else None
    except CogplaneError as exc:
        if exc.status != 401:
            raise
        caller = None
    if caller is None:
        message = "Paste an API token" if not token else "That token is not valid"
        return login_form(request, next, message, status_code=401)
    return signed_in(request, token, caller.account.username, next)


@router.post("/login/dev", response_model=None)
async def login_dev(
    request: Request,
    bus: BusDep,
    next: Annotated[str, Form(max_length=2000)] = "/models",
    nonce: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """One-click sign-in as the development user (only when the gateway allows it)."""
    if not settings_of(request).dev_sign_in:
        raise NotFound("Not found")
    check_nonce(request, nonce)
    account = await bus.request(
        DEV_BOOTSTRAP, DevBootstrap(username=DEV_USER, organization=DEV_ORG)
    )
    return signed_in(request, account.token, account.account.username, next)


@router.post("/logout", response_model=None)
async def logout(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
