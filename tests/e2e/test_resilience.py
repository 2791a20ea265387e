"""Losing NATS or PostgreSQL makes services unready with a reason; they recover by themselves."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterable

import httpx
import pytest

from cogplane.cli.devstack import SERVICES, DevStack

pytestmark = pytest.mark.e2e
DB_SERVICES = ["registry", "scheduler", "autoscaler", "billing"]
# uvicorn re-raises the SIGTERM it handled once shutdown is complete, so a clean stop exits by it.
CLEAN_EXIT = (0, -signal.SIGTERM)


def readiness(stack: DevStack, service: str) -> httpx.Response:
    return httpx.get(f"{stack.url(service)}/readyz", timeout=10)


def wait_for(
    stack: DevStack, services: Iterable[str], want: int, timeout: float = 45
) -> dict[str, dict[str, object]]:
    """Poll /readyz until each service answers ``want``; return their last bodies."""
    deadline = time.monotonic() + timeout
    bodies: dict[str, dict[str, object]] = {}
    pending = set(services)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            try:
                response = readiness(stack, name)
            except httpx.TransportError:  # not listening yet
                continue
            if response.status_code == want:
                bodies[name] = response.json()
                pending.discard(name)
        time.sleep(0.1)
    assert not pending, f"{sorted(pending)} never answered {want}"
    return bodies


def test_nats_outage_is_reported_and_recovered(stack: DevStack, auth: dict[str, str]) -> None:
    stack.nats.stop()
    try:
        bodies = wait_for(stack, [s.name for s in SERVICES], 503)
        for body in bodies.values():
            assert body["title"] == "Not ready"
            assert "nats" in body["checks"]  # type: ignore[operator]
            assert "nats" in str(body["detail"])
        outage = httpx.get(f"{stack.gateway_url}/v1/account", headers=auth)
        assert outage.status_code == 503
        assert outage.headers["content-type"] == "application/problem+json"
    finally:
        stack.nats.start()
    wait_for(stack, [s.name for s in SERVICES], 200)
    again = httpx.get(f"{stack.gateway_url}/v1/account", headers=auth)
    assert again.status_code == 200
    assert again.json()["username"] == "dev"


def test_postgres_outage_is_reported_and_recovered(stack: DevStack, auth: dict[str, str]) -> None:
    created = httpx.post(f"{stack.gateway_url}/v1/tokens", json={"name": "unused"}, headers=auth)
    unseen = {"Authorization": f"Bearer {created.json()['token']}"}
    assert httpx.get(f"{stack.gateway_url}/v1/account", headers=auth).status_code == 200
    stack.postgres.stop()
    try:
        bodies = wait_for(stack, DB_SERVICES, 503)
        for body in bodies.values():
            assert "database" in body["checks"]  # type: ignore[operator]
        assert readiness(stack, "api-gateway").status_code == 200  # it owns no tables
        # A token the gateway has not verified yet needs the registry's database: 503, not 500.
        outage = httpx.get(f"{stack.gateway_url}/v1/account", headers=unseen)
        assert outage.status_code == 503
        assert outage.json()["detail"] == "The database is unavailable; try again shortly"
        # One verified moments ago is still served from the gateway's cache.
        assert httpx.get(f"{stack.gateway_url}/v1/account", headers=auth).status_code == 200
    finally:
        stack.postgres.start()
    wait_for(stack, DB_SERVICES, 200)
    assert httpx.get(f"{stack.gateway_url}/v1/account", headers=unseen).status_code == 200


def test_a_service_started_before_nats_waits_and_says_so(
    stack: DevStack, auth: dict[str, str]
) -> None:
    assert stack.stop_service("registry") in CLEAN_EXIT
    stack.nats.stop()
    try:
        stack.start_service("registry")
        body = wait_for(stack, ["registry"], 503)["registry"]
        assert "nats" in body["checks"]  # type: ignore[operator]
        time.sleep(1.5)  # several failed attempts, still alive and still saying why
        assert readiness(stack, "registry").status_code == 503
        log = stack.log("registry").read_text()
        assert "registry waits for nats" in log
    finally:
        stack.nats.start()
    wait_for(stack, [s.name for s in SERVICES], 200)
    assert httpx.get(f"{stack.gateway_url}/v1/account", headers=auth).status_code == 200


def test_sigterm_stops_a_service_cleanly(stack: DevStack) -> None:
    before = stack.log("scheduler").read_text()
    assert stack.stop_service("scheduler") in CLEAN_EXIT
    log = stack.log("scheduler").read_text()[len(before) :]
    assert "scheduler stopped" in log
    assert "Application shutdown complete" in log
    stack.start_service("scheduler")
    wait_for(stack, ["scheduler"], 200)
