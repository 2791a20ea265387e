"""Registry settings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cogplane.common.config import ServiceSettings


class RegistrySettings(ServiceSettings):
    """Settings of the registry (env prefix ``COGPLANE_REGISTRY_``)."""

    model_config = SettingsConfigDict(env_prefix="COGPLANE_REGISTRY_", populate_by_name=True)

    port: int = 8701
    allow_dev_bootstrap: bool = Field(
        default=False,
        description=(
            "Serve registry.dev.bootstrap, which creates an administrator and a token for anyone "
            "on NATS. Only for `cogplane dev`."
        ),
    )
    deployment_max_min: int = Field(
        default=5,
        ge=0,
        description="Largest min_instances a deployment may ask for (Replicate allows 5).",
    )
    deployment_max_max: int = Field(
        default=20,
        ge=1,
        description="Largest max_instances a deployment may ask for (Replicate allows 20).",
    )
