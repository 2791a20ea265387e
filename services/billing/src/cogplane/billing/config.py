"""Billing settings."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from cogplane.common.config import ServiceSettings


class BillingSettings(ServiceSettings):
    """Settings of billing (env prefix ``COGPLANE_BILLING_``)."""

    model_config = SettingsConfigDict(env_prefix="COGPLANE_BILLING_", populate_by_name=True)

    port: int = 8704
