"""Request dependencies of the gateway."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cogplane.common.bus import Bus
from cogplane.common.contracts.accounts import VERIFY_TOKEN, Caller, VerifyToken
from cogplane.common.contracts.models import Viewer
from cogplane.common.errors import Forbidden, Unauthenticated
from cogplane.common.service import Runtime
from cogplane.gateway.auth import CallerCache
from cogplane.gateway.web.session import COOKIE, CSRF_HEADER, UNSAFE_METHODS, SessionCodec

NO_TOKEN = "You did not pass an authentication token"  # noqa: S105 - a message
BAD_TOKEN = "You did not pass a valid authentication token"  # noqa: S105 - a message
_SCHEMES = ("bearer", "token")


def get_bus(request: Request) -> Bus:
    """The gateway's NATS connection."""
    runtime: Runtime = request.app.state.runtime
    return runtime.bus


BusDep = Annotated[Bus, Depends(get_bus)]


def bearer_token(request: Request) -> str:
    """The token of ``Authorization: Bearer <token>`` (or the legacy ``Token`` scheme), or 401."""
    header = request.headers.get("authorization")
    if header is None or not header.strip():
        raise Unauthenticated(NO_TOKEN)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() not in _SCHEMES:
        raise Unauthenticated(BAD_TOKEN)
    if not token.strip():
        raise Unauthenticated(NO_TOKEN)
    return token.strip()


def request_token(request: Request) -> str:
    """The caller's token: the Authorization header, else a browser session's (web app).

    With a session, a request that changes something must carry the session's CSRF token in
    ``X-CSRF-Token`` (the web app's scripts do), so other sites cannot act for the user.
    """
    cookie = request.cookies.get(COOKIE)
    if request.headers.get("authorization") is not None or cookie is None:
        return bearer_token(request)
    runtime: Runtime = request.app.state.runtime
    codec: SessionCodec = runtime.extras["sessions"]
    session = codec.decode(cookie)
    if session is None:
        raise Unauthenticated("Your session has expired; sign in again")
    if request.method in UNSAFE_METHODS and not codec.csrf_valid(
        cookie, request.headers.get(CSRF_HEADER)
    ):
        raise Forbidden("Missing or invalid CSRF token (X-CSRF-Token)")
    return session.token


async def current_caller(request: Request, bus: BusDep) -> Caller:
    """The verified caller of this request (from the cache when recently verified)."""
    token = request_token(request)
    return await verify(request, bus, token)


async def verify(request: Request, bus: Bus, token: str) -> Caller:
    """The caller a token belongs to (401 when it is not a valid token)."""
    if len(token) > 200 or not token.isascii():
        raise Unauthenticated(BAD_TOKEN)
    runtime: Runtime = request.app.state.runtime
    cache: CallerCache = runtime.extras["callers"]
    if (caller := cache.get(token)) is not None and bus.connected:
        return caller
    generation = cache.generation
    caller = await bus.request(VERIFY_TOKEN, VerifyToken(token=token))
    cache.put(token, caller, generation)
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def viewer_of(caller: Caller) -> Viewer:
    """The registry's view of a verified caller."""
    return Viewer(
        account_id=caller.account.id,
        username=caller.account.username,
        organizations=caller.organizations,
        is_admin=caller.is_admin,
    )


async def current_viewer(caller: CurrentCaller) -> Viewer:
    """The verified caller, as the registry wants it."""
    return viewer_of(caller)


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]


def public_base(request: Request) -> str:
    """The base URL clients reach us at (configured, or this request's), without a slash."""
    runtime: Runtime = request.app.state.runtime
    configured = getattr(runtime.settings, "public_url", "")
    return (configured or str(request.base_url)).rstrip("/")


PublicBase = Annotated[str, Depends(public_base)]
