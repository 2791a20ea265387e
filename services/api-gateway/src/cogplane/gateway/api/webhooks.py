"""``/v1/webhooks/default/secret``: the key webhooks to your predictions are signed with."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from cogplane.common.contracts.webhooks import GET_WEBHOOK_SECRET, WebhookSecretRequest
from cogplane.gateway.deps import BusDep, CurrentViewer

router = APIRouter(prefix="/v1", tags=["webhooks"])


class WebhookSecretOut(BaseModel):
    key: str


@router.get("/webhooks/default/secret", response_model=WebhookSecretOut)
async def get_default_secret(viewer: CurrentViewer, bus: BusDep) -> WebhookSecretOut:
    """Your webhook signing secret (Standard Webhooks: whsec_ and a base64 key)."""
    secret = await bus.request(GET_WEBHOOK_SECRET, WebhookSecretRequest(viewer=viewer))
    return WebhookSecretOut(key=secret.key)
