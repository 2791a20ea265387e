"""Errors on web pages are pages; everywhere else they stay problem+json."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cogplane.common.errors import CogplaneError
from cogplane.gateway.web.auth import SignInRequired
from cogplane.gateway.web.render import page

Handler = Callable[[Request, Exception], Awaitable[Response]]
API_PREFIXES = ("/v1/", "/v1", "/deliveries/", "/static/", "/livez", "/readyz", "/docs", "/openapi")


def is_page(request: Request) -> bool:
    """Whether the request is for a web page (and a browser asks for HTML)."""
    path = request.url.path
    if path.startswith(API_PREFIXES) or path == "/nats-handlers":
        return False
    return "text/html" in request.headers.get("accept", "") or request.method == "POST"


def install(app: FastAPI) -> None:
    """Render errors of web pages as pages; keep the installed handlers for everything else."""

    def wrap(kind: type[Exception]) -> None:
        original: Handler = app.exception_handlers[kind]  # type: ignore[assignment]

        async def handler(request: Request, exc: Exception) -> Response:
            if not is_page(request):
                return await original(request, exc)
            status, title, detail = 500, "Something went wrong", "An unexpected error occurred."
            if isinstance(exc, CogplaneError):
                status, title, detail = exc.status, exc.title, exc.detail
            elif isinstance(exc, StarletteHTTPException):
                status = exc.status_code
                title = "Not found" if status == 404 else "Error"
                detail = "There is no such page." if status == 404 else str(exc.detail)
            elif isinstance(exc, RequestValidationError):
                status, title, detail = 422, "Invalid request", "Some values were not valid."
            return page(request, "error.html", status_code=status, title=title, detail=detail)

        app.add_exception_handler(kind, handler)

    for kind in (CogplaneError, StarletteHTTPException, RequestValidationError):
        wrap(kind)

    async def sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(f"/login?next={quote(exc.next_path)}", status_code=303)

    app.add_exception_handler(SignInRequired, sign_in)
