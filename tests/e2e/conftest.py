"""The whole platform as real processes, started once per session by the same code as `make dev`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from cogplane.cli.devstack import DEFAULT_PORTS, DevStack
from cogplane.common.embedded import free_port
from cogplane.common.testing.metering import check_metering

PUSH_MAX_BYTES = 2_000_000


def stack_ports() -> dict[str, int]:
    return {name: free_port() for name in DEFAULT_PORTS}


@pytest.fixture(scope="session")
def spans_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("telemetry") / "spans.jsonl"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, spans_file: Path) -> Iterator[DevStack]:
    """A running platform with its development account (see ``stack.token``)."""
    platform = DevStack(
        tmp_path_factory.mktemp("platform") / ".cogplane",
        ports=stack_ports(),
        durable=False,
        extra_env={
            "COGPLANE_TELEMETRY_EXPORTER": "file",
            "COGPLANE_TELEMETRY_FILE": str(spans_file),
            "COGPLANE_RUNNER_HEARTBEAT_INTERVAL": "1",
            "COGPLANE_RUNNER_SIMULATED_GPUS": "gpu-t4:2",
            "COGPLANE_CONNECT_RETRY_MAX": "1",
            "COGPLANE_GATEWAY_PUSH_MAX_BYTES": str(PUSH_MAX_BYTES),
            "COGPLANE_RUNNER_CPU_SLOTS": "3",
            "COGPLANE_AUTOSCALER_IDLE_TIMEOUT": "20",
        },
    )
    platform.start()
    try:
        yield platform
        # Every instance these tests ran is metered exactly (see cogplane.common.testing).
        asyncio.run(check_metering(platform.nats.url))
    finally:
        platform.stop()


@pytest.fixture
def auth(stack: DevStack) -> dict[str, str]:
    assert stack.token is not None
    return {"Authorization": f"Bearer {stack.token}"}
