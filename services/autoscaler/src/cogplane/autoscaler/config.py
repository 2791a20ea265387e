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
        description="An instance of a shared pool idle this long is stopped (scale to zero).",
    )
    tick_interval: Duration = Field(
        default=timedelta(seconds=0.5), description="How often every target is looked at."
    )
