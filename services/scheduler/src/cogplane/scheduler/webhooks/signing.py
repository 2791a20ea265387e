"""Standard Webhooks signatures, as Replicate's clients validate them.

The secret is ``whsec_`` followed by the standard base64 (with padding) of 32 random bytes: the
Python client splits it on ``_`` and needs exactly two parts, the Node client compares base64
strings, so neither ``_`` nor the URL-safe alphabet may appear after the prefix.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
KEY_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret."""
    return PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def new_key() -> str:
    """A fresh platform key (standard base64 of random bytes)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def secret_bytes(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret."""
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one delivery attempt."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }
