"""Gateway settings."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from cogplane.common.config import Duration, ServiceSettings

# Only for `cogplane dev` and tests: anyone who knows it can forge download links.
DEV_FILES_SIGNING_KEY = "cogplane-dev-only-files-signing-key"


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
    version_cache_ttl: Duration = Field(
        default=timedelta(seconds=5),
        description=(
            "How long a resolved version is reused for predictions without asking the registry "
            "(bounds how long a visibility change or a new latest version takes to apply)."
        ),
    )
    auth_cache_size: int = Field(default=10_000, ge=1, description="Tokens remembered at most.")
    push_max_bytes: int = Field(
        default=500 * 1024 * 1024, ge=1, description="Largest pushed project archive, in bytes."
    )
    dev_sign_in: bool = Field(
        default=False,
        description=(
            "Development only: the web app's sign-in page offers one-click sign-in as the "
            "development user (`cogplane dev` turns it on; needs the registry's dev bootstrap)."
        ),
    )
    public_url: str = Field(
        default="",
        description=(
            "Base URL clients reach the gateway at (no /v1 suffix); absolute URLs in responses "
            "use it. Empty means the URL of each request."
        ),
    )
    files_max_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1,
        description="Largest file accepted by POST /v1/files, in bytes (Replicate's 100 MiB).",
    )
    files_signing_key: SecretStr = Field(
        default=SecretStr(DEV_FILES_SIGNING_KEY),
        description=(
            "Key of the HMAC-SHA256 that signs file download links. Give every gateway replica "
            "the same secret value; the default is public and only fit for development."
        ),
    )
    files_link_ttl: Duration = Field(
        default=timedelta(hours=1),
        description=(
            "How long the signed download links that replace file URLs in prediction inputs "
            "stay valid (models fetch their inputs without a token)."
        ),
    )
