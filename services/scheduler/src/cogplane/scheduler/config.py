"""Scheduler settings."""

from __future__ import annotations

from datetime import timedelta

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from cogplane.common.config import Duration, ServiceSettings


class SchedulerSettings(ServiceSettings):
    """Settings of the scheduler (env prefix ``COGPLANE_SCHEDULER_``)."""

    model_config = SettingsConfigDict(env_prefix="COGPLANE_SCHEDULER_", populate_by_name=True)

    port: int = 8702
    queue_timeout: Duration = Field(
        default=timedelta(minutes=10),
        description="A prediction no instance took within this time fails with that reason.",
    )
    run_timeout: Duration = Field(
        default=timedelta(minutes=30), description="A prediction running longer than this fails."
    )
    pool_max_instances: int = Field(
        default=1, ge=1, description="Most instances a version's shared pool scales to."
    )
    runner_offline_after: Duration = Field(
        default=timedelta(seconds=15),
        description=(
            "A runner not heard from for this long is considered offline: its instances are "
            "declared failed and replaced elsewhere."
        ),
    )
    housekeeping_interval: Duration = Field(
        default=timedelta(seconds=1),
        description=(
            "How often silent runners are looked for and instances waiting for capacity are placed."
        ),
    )
    public_url: str = Field(
        default="http://127.0.0.1:8700",
        # The gateway's setting serves as well: both must name the same URL.
        validation_alias=AliasChoices(
            "COGPLANE_SCHEDULER_PUBLIC_URL", "COGPLANE_GATEWAY_PUBLIC_URL"
        ),
        description=(
            "Base URL clients reach the gateway at (no /v1 suffix), for the URLs inside webhook "
            "bodies (COGPLANE_SCHEDULER_PUBLIC_URL, else COGPLANE_GATEWAY_PUBLIC_URL)."
        ),
    )
    webhook_timeout: Duration = Field(
        default=timedelta(seconds=5),
        description="A webhook receiver that has not answered within this time has failed.",
    )
    webhook_throttle: Duration = Field(
        default=timedelta(milliseconds=500),
        description="Least time between two webhooks of one prediction for output or logs.",
    )
    webhook_attempts: int = Field(
        default=6,
        ge=1,
        description=(
            "Attempts at a completed webhook; with the default backoff the last one is about a "
            "minute after completion. Intermediate webhooks are sent once."
        ),
    )
    webhook_retry_initial: Duration = Field(
        default=timedelta(seconds=2),
        description="Pause before the first retry of a completed webhook (then doubling).",
    )
    webhook_concurrency: int = Field(
        default=8, ge=1, description="Completed webhooks delivered at once by each replica."
    )
    retention_api: Duration = Field(
        default=timedelta(hours=1),
        description="API predictions lose their input, output and logs this long after they end.",
    )
    retention_web: Duration = Field(
        default=timedelta(days=90),
        description="Web predictions lose their input, output and logs this long after they end.",
    )
    retention_interval: Duration = Field(
        default=timedelta(minutes=1), description="How often expired prediction data is removed."
    )
