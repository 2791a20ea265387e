"""The gateway's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from cogplane.common.service import ServiceSpec, create_service_app
from cogplane.gateway.api import accounts
from cogplane.gateway.config import GatewaySettings

SPEC = ServiceSpec(
    name="api-gateway",
    title="Cogplane API",
    description=(
        "Replicate-compatible HTTP API (`/v1`). Authenticate with `Authorization: Bearer <token>` "
        "(or the legacy `Token` scheme). Errors are RFC 7807 problem+json."
    ),
    uses_database=False,
    routers=[accounts.router],
)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway app for ``settings`` (read from the environment when omitted)."""
    return create_service_app(SPEC, settings or GatewaySettings())
