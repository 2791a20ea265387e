"""Runner settings."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cogplane.common.config import Duration, ServiceSettings


class RunnerSettings(ServiceSettings):
    """Settings of a runner node (env prefix ``COGPLANE_RUNNER_``)."""

    model_config = SettingsConfigDict(env_prefix="COGPLANE_RUNNER_", populate_by_name=True)

    port: int = 8705
    node_id: str = Field(
        default_factory=socket.gethostname, description="Unique name of this node."
    )
    cpu_slots: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=0,
        description="How many CPU instances this node hosts at once.",
    )
    simulated_gpus: str = Field(
        default="",
        description=(
            "Development only: GPU capacity to pretend to have, as 'sku:count,...' "
            "(for example 'gpu-t4:2'). Such instances run on the CPU and are labelled simulated."
        ),
    )
    data_dir: Path = Field(
        default=Path.home() / ".cache" / "cogplane" / "runner",
        description="Where this node keeps unpacked sources and cached model environments.",
    )
    cog_version: str = Field(
        default="0.23.1",
        description="Cog version installed in model environments unless cog.yaml pins one.",
    )
    heartbeat_interval: Duration = Field(
        default=timedelta(seconds=5), description="How often the node announces itself."
    )
