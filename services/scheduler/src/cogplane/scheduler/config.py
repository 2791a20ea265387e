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
    runner_offline_after: Duration = Field(
        default=timedelta(seconds=15),
        description="A runner not heard from for this long is considered offline.",
    )
