"""Scheduler settings."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
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
        description="A runner not heard from for this long is considered offline.",
    )
