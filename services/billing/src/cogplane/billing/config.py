"""Billing settings."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from cogplane.billing.rules import Policy, default_prices
from cogplane.common.config import ServiceSettings


class BillingSettings(ServiceSettings):
    """Settings of billing (env prefix ``COGPLANE_BILLING_``)."""

    model_config = SettingsConfigDict(env_prefix="COGPLANE_BILLING_", populate_by_name=True)

    port: int = 8704
    policy: Policy = Field(
        default_factory=Policy,
        description=(
            "What is charged, per class of instance (deployment, private, public), as JSON: "
            '{"public": {"instance_time": [], "prediction_time": true}, ...}. The default is '
            "Replicate's: public models cost their predictions' processing only; private models "
            "and deployments cost setup, idle and processing of their instances."
        ),
    )
    prices: dict[str, Decimal] = Field(
        default_factory=default_prices,
        description=(
            "Dollars per second by hardware SKU, as JSON; Replicate's published prices by "
            "default. Given prices replace the defaults of those SKUs."
        ),
    )

    @field_validator("prices")
    @classmethod
    def _over_defaults(cls, given: dict[str, Decimal]) -> dict[str, Decimal]:
        return {**default_prices(), **given}
