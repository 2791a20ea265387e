"""The autoscaler's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from cogplane.autoscaler import consumers
from cogplane.autoscaler.config import AutoscalerSettings
from cogplane.autoscaler.models import SCHEMA
from cogplane.common.contracts.scaling import LIST_DECISIONS, TARGET_SERIES
from cogplane.common.db import migrations_dir
from cogplane.common.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="autoscaler",
    title="Cogplane autoscaler",
    description=(
        "Decides the desired number of instances of each target within [min, max] from queue "
        "depth, queue age, in-flight work and idle time; keeps an auditable log of decisions."
    ),
    uses_database=True,
    schema=SCHEMA,
    migrations=migrations_dir(__file__),
    start=consumers.register,
    stop=consumers.stop,
    handlers=[LIST_DECISIONS.subject, TARGET_SERIES.subject, "listens to targets.changed"],
)


def create_app(settings: AutoscalerSettings | None = None) -> FastAPI:
    """The autoscaler app for ``settings`` (read from the environment when omitted)."""
    return create_service_app(SPEC, settings or AutoscalerSettings())
