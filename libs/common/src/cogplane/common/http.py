"""HTTP plumbing every service shares: problem+json rendering and request guards."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cogplane.common.errors import CogplaneError, InvalidInput

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger(__name__)

_HTTP_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Input validation failed",
    429: "Too many requests",
}


def problem_response(
    problem: dict[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A problem+json response for ``problem``."""
    return JSONResponse(
        problem, status_code=int(problem["status"]), media_type=PROBLEM_JSON, headers=headers
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "body")


def _invalid_fields(exc: RequestValidationError) -> list[dict[str, str]]:
    fields = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        kind = str(err.get("type", "invalid"))
        message = str(err.get("msg", "Invalid value"))
        if kind == "json_invalid":
            message = f"Request body is not valid JSON: {err.get('ctx', {}).get('error', message)}"
            fields.append({"type": kind, "field": "body", "description": message})
            continue
        fields.append({"type": kind, "field": _field_path(loc), "description": message})
    return fields


async def _on_domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CogplaneError)
    return problem_response(exc.to_problem())


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = _invalid_fields(exc)
    detail = "".join(f"- {f['field']}: {f['description']}\n" for f in fields)
    return problem_response(
        {
            "title": "Input validation failed",
            "detail": detail,
            "status": 422,
            "invalid_fields": fields,
        }
    )


async def _on_contract_error(_: Request, exc: Exception) -> JSONResponse:
    """A path or query value that a message contract refuses (for example a NUL character)."""
    assert isinstance(exc, ValidationError)
    return problem_response(InvalidInput.of(exc).to_problem())


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = "The requested resource does not exist"
    if exc.status_code == 400 and detail == "There was an error parsing the body":
        # FastAPI's answer to a body that is not UTF-8: the same 422 as any malformed body.
        field = {"type": "json_invalid", "field": "body", "description": "Body is not UTF-8 JSON"}
        return problem_response(InvalidInput([field]).to_problem())
    title = _HTTP_TITLES.get(exc.status_code, "Error")
    return problem_response(
        {"title": title, "detail": detail, "status": exc.status_code}, headers=exc.headers
    )


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return problem_response(
        {"title": "Internal server error", "detail": "An unexpected error occurred", "status": 500}
    )


def install_error_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` as problem+json."""
    app.add_exception_handler(CogplaneError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(ValidationError, _on_contract_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


@dataclass(frozen=True)
class BodyRule:
    """What request bodies a route accepts.

    Attributes:
        path: Regular expression the request path must match in full ("" matches every path).
        max_bytes: Largest body, in bytes.
        media_types: Accepted media types besides JSON (``application/json`` and ``*+json``);
            when ``json`` is False only these are accepted.
        json: Whether JSON bodies are accepted.
    """

    path: str
    max_bytes: int
    media_types: tuple[str, ...] = ()
    json: bool = True

    def matches(self, path: str) -> bool:
        """Whether this rule governs ``path``."""
        return not self.path or re.fullmatch(self.path, path) is not None

    def accepts(self, content_type: str | None) -> bool:
        """Whether a body of ``content_type`` is acceptable."""
        if content_type is None:
            return False
        media = content_type.split(";", 1)[0].strip().lower()
        if self.json and (media == "application/json" or media.endswith("+json")):
            return True
        return media in self.media_types

    def describe_types(self) -> str:
        """The accepted types, for error messages."""
        names = (["application/json"] if self.json else []) + list(self.media_types)
        return " or ".join(names)


class RequestGuard:
    """ASGI middleware: bound request bodies and require the content types each route expects.

    The first rule whose path matches governs a request. A body larger than its ``max_bytes`` is
    refused with 413 before the handler runs (by its Content-Length, or while it streams in); a
    body of a type the rule does not accept is refused with 415.
    """

    def __init__(self, app: ASGIApp, *, rules: Sequence[BodyRule]) -> None:
        self.app = app
        self.rules = rules

    def _rule(self, path: str) -> BodyRule:
        return next(rule for rule in self.rules if rule.matches(path))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH", "QUERY"):
            await self.app(scope, receive, send)
            return
        rule = self._rule(scope["path"])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > rule.max_bytes:
            await self._reject(scope, send, 413, self._too_large(rule))
            return
        has_body = (length is not None and length != "0") or "transfer-encoding" in headers
        content_type = headers.get("content-type")
        if has_body and not rule.accepts(content_type):
            detail = (
                f"Request body must be {rule.describe_types()}, not {content_type or 'unspecified'}"
            )
            await self._reject(scope, send, 415, detail)
            return
        await self._call_bounded(scope, receive, send, rule)

    @staticmethod
    def _too_large(rule: BodyRule) -> str:
        return f"Request body must be at most {rule.max_bytes} bytes"

    async def _call_bounded(
        self, scope: Scope, receive: Receive, send: Send, rule: BodyRule
    ) -> None:
        """Count the body as it streams in; past the limit, answer 413 instead of the app."""
        seen = 0
        exceeded = False

        async def bounded_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > rule.max_bytes:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not exceeded:
                await send(message)

        try:
            await self.app(scope, bounded_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded:
            await self._reject(scope, send, 413, self._too_large(rule))

    @staticmethod
    async def _reject(scope: Scope, send: Send, status: int, detail: str) -> None:
        response = problem_response(
            {"title": _HTTP_TITLES[status], "detail": detail, "status": status}
        )
        await response(scope, _drain_nothing, send)


async def _drain_nothing() -> Message:
    return {"type": "http.disconnect"}
