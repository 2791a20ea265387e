"""Settings shared by every service: one pydantic-settings class per service built from mixins.

Shared infrastructure settings (database, NATS, telemetry) read unprefixed ``COGPLANE_*``
variables so
that one environment file configures the whole platform; service settings use the service prefix
(``COGPLANE_REGISTRY_PORT`` and so on).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _seconds(value: Any) -> Any:
    if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        return float(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_seconds)]
"""A duration: plain seconds (``"2.5"``) or ISO 8601 (``"PT2.5S"``) in the environment."""


def _shared(name: str) -> AliasChoices:
    return AliasChoices(name, f"COGPLANE_{name.upper()}")


class TelemetryExporter(StrEnum):
    """Where finished spans go."""

    NONE = "none"
    CONSOLE = "console"
    OTLP = "otlp"
    FILE = "file"


class DatabaseSettings(BaseSettings):
    """PostgreSQL connection settings."""

    database_url: SecretStr = Field(
        default=SecretStr("postgresql+asyncpg://postgres@127.0.0.1:8732/cogplane"),
        validation_alias=_shared("database_url"),
        description="SQLAlchemy URL of the PostgreSQL database (asyncpg driver).",
    )
    migrate_on_start: bool = Field(
        default=False,
        validation_alias=_shared("migrate_on_start"),
        description=(
            "Apply the service's migrations when it starts (under a Postgres advisory lock, so "
            "replicas take turns)."
        ),
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        validation_alias=_shared("database_pool_size"),
        description="Connections kept open per process.",
    )


class NatsSettings(BaseSettings):
    """NATS connection settings."""

    nats_url: str = Field(
        default="nats://127.0.0.1:8742",
        validation_alias=_shared("nats_url"),
        description="URL of the NATS server (JetStream enabled).",
    )
    request_timeout: Duration = Field(
        default=timedelta(seconds=5),
        validation_alias=_shared("request_timeout"),
        description="Default timeout of NATS request-reply calls.",
    )


class TelemetrySettings(BaseSettings):
    """OpenTelemetry settings."""

    telemetry_exporter: TelemetryExporter = Field(
        default=TelemetryExporter.NONE,
        validation_alias=_shared("telemetry_exporter"),
        description="Span exporter: none, console, otlp (OTLP over HTTP) or file (JSON lines).",
    )
    telemetry_otlp_endpoint: str = Field(
        default="http://127.0.0.1:4318/v1/traces",
        validation_alias=_shared("telemetry_otlp_endpoint"),
        description="OTLP/HTTP traces endpoint, used when the exporter is otlp.",
    )
    telemetry_file: str = Field(
        default=".cogplane/spans.jsonl",
        validation_alias=_shared("telemetry_file"),
        description="JSON-lines file that receives spans, used when the exporter is file.",
    )


class ServiceSettings(DatabaseSettings, NatsSettings, TelemetrySettings):
    """Settings every service has; subclasses set the env prefix and default port."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds.")
    port: int = Field(default=8700, ge=0, le=65535, description="HTTP port.")
    shutdown_grace: Duration = Field(
        default=timedelta(seconds=20),
        description="On SIGTERM, how long in-flight work may take before it is cancelled.",
    )
    connect_retry_max: Duration = Field(
        default=timedelta(seconds=5),
        description="Longest pause between attempts to reach PostgreSQL or NATS at start-up.",
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1, description="Largest request body accepted, in bytes."
    )
    log_level: str = Field(default="info", description="Log level of the service.")
