"""The registry's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from cogplane.common.contracts.models import START_BUILD
from cogplane.common.db import migrations_dir
from cogplane.common.service import Runtime, ServiceSpec, create_service_app
from cogplane.registry import consumers
from cogplane.registry.catalog import consumers as catalog
from cogplane.registry.config import RegistrySettings
from cogplane.registry.deployments import consumers as deployments
from cogplane.registry.files import consumers as files
from cogplane.registry.models import SCHEMA


async def _start(rt: Runtime) -> None:
    await consumers.register(rt)
    await catalog.register(rt)
    await files.register(rt)
    await deployments.register(rt)


SPEC = ServiceSpec(
    name="registry",
    title="Cogplane registry",
    description=(
        "Source of truth for accounts, organizations, memberships, API tokens, models, versions, "
        "builds, deployments and their releases. Its operations are NATS request-reply calls "
        "(listed at /nats-handlers), served to the public through the api-gateway."
    ),
    uses_database=True,
    schema=SCHEMA,
    migrations=migrations_dir(__file__),
    start=_start,
    handlers=[
        *(rpc.subject for rpc, _ in consumers.HANDLERS),
        *(rpc.subject for rpc, _ in catalog.HANDLERS),
        *(rpc.subject for rpc, _ in files.HANDLERS),
        *deployments.SUBJECTS,
        START_BUILD.subject,
        f"consumer {catalog.BUILD_CONSUMER}: {catalog.BUILD_EVENTS}",
    ],
)


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    """The registry app for ``settings`` (read from the environment when omitted)."""
    return create_service_app(SPEC, settings or RegistrySettings())
