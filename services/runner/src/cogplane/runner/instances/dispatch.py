"""Handing a prediction to coglet, and what each of Cog's refusals means for the scheduler."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from cogplane.common.errors import Conflict, InvalidInput, Unavailable
from cogplane.runner.instances.cog_client import CogClient

# Cog frees a slot within a millisecond or two of reporting the previous prediction's end:
# retry soon, then back off.
SLOT_RETRY_FIRST_PAUSE = 0.001
SLOT_RETRY_MAX_PAUSE = 0.02


async def submit(
    cog: CogClient, prediction_id: str, input: dict[str, Any], webhook: str, retry_for: float
) -> None:
    """Start the prediction on coglet; raises a CogplaneError saying why it did not.

    Cog frees a slot a moment after it reports the previous prediction's end, so a 409 is
    retried for ``retry_for`` seconds before the scheduler is told to try elsewhere.
    """
    deadline = asyncio.get_running_loop().time() + retry_for
    pause = SLOT_RETRY_FIRST_PAUSE
    while True:
        try:
            response = await cog.submit(prediction_id, input, webhook)
        except httpx.HTTPError as exc:
            raise Conflict(f"The instance does not answer: {exc}") from exc
        if response.status_code != 409 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(pause)
        pause = min(pause * 2, SLOT_RETRY_MAX_PAUSE)
    raise_for(response)


def raise_for(response: httpx.Response) -> None:
    """Nothing for an accepted prediction, else the error that explains Cog's answer."""
    status = response.status_code
    if status in (200, 201, 202):
        return
    if status == 409:
        raise Conflict("The instance has no free slot")
    if status == 503:
        raise Conflict("The instance has not finished its setup")
    if status == 422:
        raise InvalidInput(_invalid_fields(response))
    raise Unavailable(f"Cog answered {status}: {response.text[:500]}")


def _invalid_fields(response: httpx.Response) -> list[dict[str, str]]:
    """Cog's 422 ``detail`` list in the platform's ``invalid_fields`` shape."""
    try:
        details = response.json().get("detail")
    except ValueError:
        details = None
    if not isinstance(details, list) or not details:
        return [{"type": "invalid", "field": "input", "description": response.text[:500]}]
    return [_field(item) for item in details if isinstance(item, dict)]


def _field(item: dict[str, Any]) -> dict[str, str]:
    loc = [str(part) for part in item.get("loc", []) if part != "body"]
    return {
        "type": str(item.get("type", "invalid")),
        "field": ".".join(loc) or "input",
        "description": str(item.get("msg", "invalid value")),
    }
