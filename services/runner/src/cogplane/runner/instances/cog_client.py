"""Cog's HTTP API as the runner uses it (coglet 0.23: see research/cog.md §2-§3)."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

WEBHOOK_EVENTS = ["start", "output", "logs", "completed"]


class SetupStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: str | None = None
    logs: str | None = None


class Health(BaseModel):
    """``GET /health-check``: READY, BUSY, STARTING, SETUP_FAILED or UNHEALTHY."""

    model_config = ConfigDict(extra="ignore")
    status: str
    setup: SetupStatus = Field(default_factory=SetupStatus)
    user_healthcheck_error: str | None = None


class CogClient:
    """Calls one instance's coglet."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url

    async def health(self) -> Health | None:
        """Its health, or None while it does not answer."""
        try:
            response = await self.http.get(f"{self.url}/health-check", timeout=5.0)
            return Health.model_validate_json(response.content)
        except (httpx.HTTPError, ValidationError):
            return None

    async def submit(
        self, prediction_id: str, input: dict[str, Any], webhook: str
    ) -> httpx.Response:
        """Start a prediction asynchronously (idempotent per id); Cog's answer as it came."""
        body = {
            "id": prediction_id,
            "input": input,
            "webhook": webhook,
            "webhook_events_filter": WEBHOOK_EVENTS,
        }
        return await self.http.put(
            f"{self.url}/predictions/{prediction_id}",
            json=body,
            headers={"Prefer": "respond-async"},
            timeout=30.0,
        )

    async def cancel(self, prediction_id: str) -> None:
        """Cancel a prediction; one that already ended (404) or an instance gone is no error."""
        with contextlib.suppress(httpx.HTTPError):
            await self.http.post(f"{self.url}/predictions/{prediction_id}/cancel", timeout=5.0)

    async def shutdown(self) -> None:
        """Ask coglet to exit (it does within seconds)."""
        with contextlib.suppress(httpx.HTTPError):
            await self.http.post(f"{self.url}/shutdown", timeout=2.0)
