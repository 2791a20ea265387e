"""Autoscaler settings."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from cogplane.common.config import ServiceSettings


class AutoscalerSettings(ServiceSettings):
    """Settings of the autoscaler (env prefix ``COGPLANE_AUTOSCALER_``)."""

    model_config = SettingsConfigDict(env_prefix="COGPLANE_AUTOSCALER_", populate_by_name=True)

    port: int = 8703
