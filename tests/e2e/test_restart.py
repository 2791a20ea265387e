"""A second `make dev` on the same data directory reuses the data and the development token."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cogplane.cli.devstack import DevStack, StackError
from cogplane.common.embedded import port_open

from .conftest import stack_ports

pytestmark = pytest.mark.e2e


def test_second_start_reuses_data_and_token(tmp_path: Path) -> None:
    root = tmp_path / ".cogplane"
    ports = stack_ports()
    first = DevStack(root, ports=dict(ports), durable=False)
    first.start()
    try:
        auth = {"Authorization": f"Bearer {first.token}"}
        created = httpx.post(f"{first.gateway_url}/v1/tokens", json={"name": "kept"}, headers=auth)
        assert created.status_code == 201
        kept = created.json()["token"]
    finally:
        first.stop()
    assert not any(port_open(port) for port in ports.values()), "everything stopped"

    second = DevStack(root, ports=dict(ports), durable=False)
    second.start()
    try:
        assert second.token == first.token
        response = httpx.get(
            f"{second.gateway_url}/v1/account", headers={"Authorization": f"Bearer {kept}"}
        )
        assert response.status_code == 200
        assert response.json()["username"] == "dev"
    finally:
        second.stop()


def test_start_refuses_busy_ports_and_starts_nothing(tmp_path: Path, stack: DevStack) -> None:
    ports = stack_ports() | {"nats": stack.ports["nats"]}
    clash = DevStack(tmp_path / ".cogplane", ports=ports)
    with pytest.raises(StackError, match=r"ports already in use: nats"):
        clash.start()
    assert not clash.procs
    assert not (tmp_path / ".cogplane" / "postgres" / "PG_VERSION").exists()
