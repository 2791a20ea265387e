"""Billing's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from cogplane.billing import consumers
from cogplane.billing.config import BillingSettings
from cogplane.billing.models import SCHEMA
from cogplane.common.contracts.billing import INGEST_STATUS
from cogplane.common.db import migrations_dir
from cogplane.common.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="billing",
    title="Cogplane billing",
    description=(
        "Consumes instance and prediction events durably and meters setup, idle and processing "
        "seconds per instance and hardware SKU."
    ),
    uses_database=True,
    schema=SCHEMA,
    migrations=migrations_dir(__file__),
    start=consumers.register,
    handlers=[INGEST_STATUS.subject, f"consumer {consumers.CONSUMER}: {consumers.EVENTS}"],
)


def create_app(settings: BillingSettings | None = None) -> FastAPI:
    """The billing app for ``settings`` (read from the environment when omitted)."""
    return create_service_app(SPEC, settings or BillingSettings())
