"""Billing's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from cogplane.billing import consumers
from cogplane.billing.config import BillingSettings
from cogplane.billing.models import SCHEMA
from cogplane.common.db import migrations_dir
from cogplane.common.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="billing",
    title="Cogplane billing",
    description=(
        "Consumes instance and prediction events durably and meters setup, idle and processing "
        "time per instance and hardware SKU into an exact, deduplicated ledger; answers usage, "
        "prediction costs and cost estimates. What is charged is a policy (data), prices are "
        "per second per SKU."
    ),
    uses_database=True,
    schema=SCHEMA,
    migrations=migrations_dir(__file__),
    start=consumers.register,
    handlers=[
        *(rpc.subject for rpc in consumers.RPCS),
        f"consumer {consumers.CONSUMER}: {consumers.EVENTS}",
    ],
)


def create_app(settings: BillingSettings | None = None) -> FastAPI:
    """The billing app for ``settings`` (read from the environment when omitted)."""
    return create_service_app(SPEC, settings or BillingSettings())
