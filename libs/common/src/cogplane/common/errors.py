"""One domain error type, rendered as RFC 7807 problem+json in Replicate's shapes."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class CogplaneError(Exception):
    """An expected failure that carries its HTTP status.

    Args:
        detail: Human readable explanation, shown to API callers.
        status: HTTP status code.
        title: Short summary, stable per kind of problem.
        extra: Additional problem members (for example ``invalid_fields``).
    """

    status: int = 500
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        title: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.extra = extra or {}

    def to_problem(self) -> dict[str, Any]:
        """The problem+json body of this error."""
        return {"title": self.title, "detail": self.detail, "status": self.status, **self.extra}

    @classmethod
    def from_problem(cls, problem: dict[str, Any]) -> CogplaneError:
        """Rebuild an error from a problem body (for example one carried over NATS)."""
        known = {"title", "detail", "status"}
        status = int(problem.get("status", 500))
        kind = next((k for k in _KINDS if k.status == status), CogplaneError)
        error = kind.__new__(kind)
        CogplaneError.__init__(
            error,
            str(problem.get("detail", "")),
            status=status,
            title=str(problem.get("title", kind.title)),
            extra={k: v for k, v in problem.items() if k not in known},
        )
        return error


class BadRequest(CogplaneError):
    status = 400
    title = "Bad request"


class Unauthenticated(CogplaneError):
    status = 401
    title = "Unauthenticated"


class Forbidden(CogplaneError):
    status = 403
    title = "Forbidden"


class NotFound(CogplaneError):
    status = 404
    title = "Not found"


class Conflict(CogplaneError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(CogplaneError):
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(CogplaneError):
    status = 415
    title = "Unsupported media type"


class InvalidInput(CogplaneError):
    """422 with Replicate's ``invalid_fields`` list."""

    status = 422
    title = "Input validation failed"

    def __init__(self, invalid_fields: list[dict[str, str]], *, title: str | None = None) -> None:
        detail = "".join(f"- {f['field']}: {f['description']}\n" for f in invalid_fields)
        super().__init__(detail, title=title, extra={"invalid_fields": invalid_fields})

    @classmethod
    def field(cls, name: str, description: str, kind: str = "invalid") -> InvalidInput:
        """The problem for one invalid field."""
        return cls([{"type": kind, "field": name, "description": description}])

    @classmethod
    def of(cls, exc: ValidationError) -> InvalidInput:
        """The problem for a pydantic validation error, one invalid field per error."""
        return cls(
            [
                {"type": e["type"], "field": ".".join(map(str, e["loc"])), "description": e["msg"]}
                for e in exc.errors()
            ]
        )


class Unavailable(CogplaneError):
    status = 503
    title = "Service unavailable"


_KINDS: tuple[type[CogplaneError], ...] = (
    BadRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidInput,
    Unavailable,
)
