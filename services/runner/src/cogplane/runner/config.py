"""Runner settings."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
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
    setup_timeout: Duration = Field(
        default=timedelta(seconds=600),
        description="How long a model's setup() may run before its instance is declared failed.",
    )
    drain_timeout: Duration = Field(
        default=timedelta(seconds=300),
        description=(
            "How long a draining instance may take to finish its predictions before they are "
            "canceled."
        ),
    )
    cancel_grace: Duration = Field(
        default=timedelta(seconds=5),
        description=(
            "After canceling an instance's predictions, how long to wait for Cog to report "
            "their end."
        ),
    )
    stop_timeout: Duration = Field(
        default=timedelta(seconds=5),
        description="How long Cog gets to exit after each of POST /shutdown and SIGTERM.",
    )
    setup_poll_interval: Duration = Field(
        default=timedelta(milliseconds=50),
        description=(
            "How often a starting instance's health is checked (often: the time to notice "
            "readiness is billed setup time)."
        ),
    )
    health_interval: Duration = Field(
        default=timedelta(milliseconds=500),
        description="How often a running instance's health is checked.",
    )
    slot_retry: Duration = Field(
        default=timedelta(seconds=1),
        description=(
            "How long to retry a prediction Cog refuses for want of a free slot (Cog frees a slot "
            "shortly after reporting the previous prediction's end)."
        ),
    )
    webhook_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Loopback port that receives Cog's webhooks (0: any free port).",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8700",
        # The gateway's setting serves as well: output file URLs point at the gateway.
        validation_alias=AliasChoices("COGPLANE_RUNNER_PUBLIC_URL", "COGPLANE_GATEWAY_PUBLIC_URL"),
        description=(
            "Base URL clients reach the gateway at (no /v1 suffix): output file URLs start with "
            "it (COGPLANE_RUNNER_PUBLIC_URL, else COGPLANE_GATEWAY_PUBLIC_URL)."
        ),
    )
    file_outputs: Literal["auto", "url", "data_url"] = Field(
        default="auto",
        description=(
            "How file outputs reach clients: 'url' stores them (Cog's --upload-url) and returns "
            "a download URL; 'data_url' inlines them as data: URLs; 'auto' picks 'url' when the "
            "public URL is https and 'data_url' otherwise, because Replicate's clients only treat "
            "https: and data: strings as files."
        ),
    )
    output_max_bytes: int = Field(
        default=2 * 1024 * 1024 * 1024,
        ge=1,
        description="Largest output file a model may produce when outputs are stored, in bytes.",
    )

    @property
    def upload_outputs(self) -> bool:
        """Whether file outputs are stored and returned as URLs (see ``file_outputs``)."""
        if self.file_outputs == "auto":
            return self.public_url.startswith("https://")
        return self.file_outputs == "url"
