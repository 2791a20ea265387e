"""The registry's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from cogplane.common.db import migrations_dir
from cogplane.common.service import ServiceSpec, create_service_app
from cogplane.registry import consumers
from cogplane.registry.config import RegistrySettings
from cogplane.registry.models import SCHEMA

SPEC = ServiceSpec(
    name="registry",
    title="Cogplane registry",
    description=(
        "Source of truth for accounts, organizations, memberships and API tokens. "
        "Its operations are NATS request-reply calls (listed at /nats-handlers), "
        "served to the public through the api-gateway."
    ),
    uses_database=True,
    schema=SCHEMA,
    migrations=migrations_dir(__file__),
    start=consumers.register,
    handlers=[rpc.subject for rpc, _ in consumers.HANDLERS],
)


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    """The registry app for ``settings`` (read from the environment when omitted)."""
    return create_service_app(SPEC, settings or RegistrySettings())
