"""Gateway settings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cogplane.common.config import ServiceSettings


class GatewaySettings(ServiceSettings):
    """Settings of the api-gateway (env prefix ``COGPLANE_GATEWAY_``)."""

    model_config = SettingsConfigDict(env_prefix="COGPLANE_GATEWAY_", populate_by_name=True)

    port: int = 8700
    public_url: str = Field(
        default="",
        description=(
            "Base URL clients reach the gateway at (no /v1 suffix); absolute URLs in responses "
            "use it. Empty means the URL of each request."
        ),
    )
