"""`cogplane dev` (what `make dev` runs): it says where things are and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cogplane.cli.devstack import read_env_file
from cogplane.common.embedded import port_open

from .conftest import stack_ports

pytestmark = pytest.mark.e2e


def start_dev(root: Path) -> tuple[subprocess.Popen[str], dict[str, int], list[str]]:
    ports = stack_ports()
    env = dict(os.environ)
    env.update(
        {
            "COGPLANE_GATEWAY_PORT": str(ports["api-gateway"]),
            "COGPLANE_DEV_POSTGRES_PORT": str(ports["postgres"]),
            "COGPLANE_DEV_NATS_PORT": str(ports["nats"]),
        }
    )
    env.update(
        {
            f"COGPLANE_{n.upper()}_PORT": str(ports[n])
            for n in ("registry", "scheduler", "autoscaler", "billing", "runner")
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cogplane.cli", "dev", "--data-dir", str(root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            return proc, ports, lines
    proc.kill()
    raise AssertionError("cogplane dev did not come up:\n" + "".join(lines))


def wait_closed(ports: dict[str, int], timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        still = [name for name, port in ports.items() if port_open(port)]
        if not still:
            return []
        time.sleep(0.2)
    return still


def test_ctrl_c_stops_everything_cleanly(tmp_path: Path) -> None:
    proc, ports, lines = start_dev(tmp_path / ".cogplane")
    output = "".join(lines)
    gateway = f"http://127.0.0.1:{ports['api-gateway']}"
    env = read_env_file(tmp_path / ".cogplane" / "dev.env")
    assert f"gateway      {gateway}" in output
    assert f"token        {env['COGPLANE_TOKEN']}" in output
    for name in ("registry", "scheduler", "autoscaler", "billing", "runner"):
        assert f"http://127.0.0.1:{ports[name]}/docs" in output
    account = httpx.get(
        f"{gateway}/v1/account", headers={"Authorization": f"Bearer {env['COGPLANE_TOKEN']}"}
    )
    assert account.json()["username"] == "dev"

    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "Stopped." in rest
    assert wait_closed(ports) == []
    assert not (tmp_path / ".cogplane" / "dev.pid").exists()


def test_a_killed_supervisor_leaves_no_servers_behind(tmp_path: Path) -> None:
    proc, ports, _ = start_dev(tmp_path / ".cogplane")
    proc.kill()
    proc.wait()
    assert wait_closed(ports) == []
