"""One webhook request: the prediction as ``GET /v1/predictions/{id}`` shows it, signed."""

from __future__ import annotations

import json
import logging
import time

import httpx

from cogplane.common.contracts.predictions import PredictionRecord
from cogplane.common.predictions_json import render_prediction
from cogplane.scheduler.webhooks.keys import Keys
from cogplane.scheduler.webhooks.signing import signed_headers

logger = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The receiver could not be reached or did not answer 2xx (a redirect is a failure)."""


class Sender:
    """POSTs signed prediction bodies to webhook URLs.

    Args:
        client: An HTTP client that does not follow redirects ("Replicate will not follow
            redirects") and times out after a few seconds.
        keys: Where the signing secrets come from.
        public_url: The base URL of the prediction's ``urls``.
    """

    def __init__(self, client: httpx.AsyncClient, keys: Keys, public_url: str) -> None:
        self.client = client
        self.keys = keys
        self.public_url = public_url.rstrip("/")

    def body(self, record: PredictionRecord) -> bytes:
        """The JSON body for ``record``."""
        rendered = render_prediction(record, self.public_url, stream_key=self.keys.stream_key)
        return json.dumps(rendered, ensure_ascii=False, separators=(",", ":")).encode()

    async def send(self, record: PredictionRecord, message_id: str) -> None:
        """Deliver ``record`` once; raise DeliveryFailed unless the receiver answers 2xx."""
        if record.webhook is None:
            return
        body = self.body(record)
        secret = await self.keys.webhook_secret(record.owner_account_id)
        headers = signed_headers(secret, message_id, int(time.time()), body)
        try:
            response = await self.client.post(record.webhook, content=body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}".strip()) from exc
        if not response.is_success:
            raise DeliveryFailed(f"the receiver answered {response.status_code}")
