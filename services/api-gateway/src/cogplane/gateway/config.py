"""Gateway settings."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cogplane.common.config import Duration, ServiceSettings


class GatewaySettings(ServiceSettings):
    """Settings of the api-gateway (env prefix ``COGPLANE_GATEWAY_``)."""

    model_config = SettingsConfigDict(env_prefix="COGPLANE_GATEWAY_", populate_by_name=True)

    port: int = 8700
    auth_cache_ttl: Duration = Field(
        default=timedelta(seconds=30),
        description=(
            "How long a verified token is trusted without asking the registry again. Revocations "
            "and membership changes take effect at once regardless (they are broadcast); 0 "
            "disables the cache."
        ),
    )
    auth_cache_size: int = Field(default=10_000, ge=1, description="Tokens remembered at most.")
    push_max_bytes: int = Field(
        default=500 * 1024 * 1024, ge=1, description="Largest pushed project archive, in bytes."
    )
    public_url: str = Field(
        default="",
        description=(
            "Base URL clients reach the gateway at (no /v1 suffix); absolute URLs in responses "
            "use it. Empty means the URL of each request."
        ),
    )
