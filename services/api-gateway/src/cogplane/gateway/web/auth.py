"""Who is signed in to the web app, and the checks on its forms."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from cogplane.common.bus import Bus
from cogplane.common.contracts.accounts import Caller
from cogplane.common.contracts.models import Viewer
from cogplane.common.errors import CogplaneError, Forbidden
from cogplane.common.service import Runtime
from cogplane.gateway.config import GatewaySettings
from cogplane.gateway.deps import BusDep, verify, viewer_of
from cogplane.gateway.web.session import COOKIE, CSRF_FIELD, SessionCodec


class SignInRequired(Exception):
    """The page needs a signed-in user: the browser goes to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def codec(request: Request) -> SessionCodec:
    runtime: Runtime = request.app.state.runtime
    found: SessionCodec = runtime.extras["sessions"]
    return found


def settings_of(request: Request) -> GatewaySettings:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    assert isinstance(settings, GatewaySettings)
    return settings


async def session_caller(request: Request, bus: Bus) -> Caller | None:
    """The signed-in caller, or None (no cookie, a forged or expired one, a revoked token)."""
    request.state.dev_sign_in = settings_of(request).dev_sign_in
    cookie = request.cookies.get(COOKIE)
    if cookie is None:
        return None
    session = codec(request).decode(cookie)
    if session is None:
        return None
    try:
        caller = await verify(request, bus, session.token)
    except CogplaneError as exc:
        if exc.status == 401:
            return None
        raise
    request.state.web_viewer = caller.account
    request.state.csrf = codec(request).csrf(cookie)
    request.state.organizations = caller.organizations
    return caller


async def web_viewer(request: Request, bus: BusDep) -> Viewer:
    """The signed-in viewer of a page; otherwise the browser is sent to sign in."""
    caller = await session_caller(request, bus)
    if caller is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return viewer_of(caller)


WebViewer = Annotated[Viewer, Depends(web_viewer)]


def check_csrf(request: Request, form: FormData) -> None:
    """Refuse a form post without the session's CSRF token (403)."""
    cookie = request.cookies.get(COOKIE)
    given = form.get(CSRF_FIELD)
    if cookie is None or not codec(request).csrf_valid(
        cookie, given if isinstance(given, str) else None
    ):
        raise Forbidden("This form has expired or did not come from this site; reload the page")
