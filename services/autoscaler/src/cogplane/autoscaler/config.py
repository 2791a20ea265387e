"""Autoscaler settings."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cogplane.common.config import Duration, ServiceSettings


class AutoscalerSettings(ServiceSettings):
    """Settings of the autoscaler (env prefix ``COGPLANE_AUTOSCALER_``)."""

    model_config = SettingsConfigDict(env_prefix="COGPLANE_AUTOSCALER_", populate_by_name=True)

    port: int = 8703
    idle_timeout: Duration = Field(
        default=timedelta(minutes=5),
        description=(
            "Scale-down delay: once a target has had no work for this long, its instances go "
            "down to min_instances (zero for shared pools and for deployments with min 0)."
        ),
    )
    stable_window: Duration = Field(
        default=timedelta(seconds=60),
        description=(
            "While a target has work, it shrinks only to the most instances needed over this "
            "window."
        ),
    )
    target_per_slot: float = Field(
        default=1.0,
        gt=0,
        description=(
            "Queued plus running predictions per instance slot above which more instances are "
            "started at once (1: one prediction per slot, no waiting)."
        ),
    )
    tick_interval: Duration = Field(
        default=timedelta(seconds=1),
        description="How often every target is looked at when nothing happens.",
    )
    min_gap: Duration = Field(
        default=timedelta(milliseconds=50),
        description="Least time between two rounds of decisions (queue changes are coalesced).",
    )
    lease_ttl: Duration = Field(
        default=timedelta(seconds=3),
        description=(
            "How long a replica owns a target's decisions without renewing; a dead replica's "
            "targets are taken over after this."
        ),
    )
    sample_interval: Duration = Field(
        default=timedelta(seconds=10),
        description="How often a target's state is recorded for monitoring's time series.",
    )
    history_retention: Duration = Field(
        default=timedelta(days=7),
        description="Samples and decisions older than this are deleted.",
    )
