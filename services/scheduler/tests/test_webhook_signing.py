"""Webhook signatures, checked with the official Python client's own validator."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import httpx
import pytest
from replicate.webhook import InvalidSignatureError, Webhooks, WebhookSigningSecret

from cogplane.scheduler.webhooks.signing import new_secret, secret_bytes, signed_headers

BODY = '{"id":"abc","status":"succeeded","output":"héllo"}'.encode()


def test_secret_shape_suits_both_clients() -> None:
    for _ in range(200):  # base64 of random bytes: every alphabet character gets its chance
        secret = new_secret()
        assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret), secret
        assert len(secret.split("_")) == 2  # Python's validator needs exactly two parts
        assert len(secret_bytes(secret)) == 32
    assert new_secret() != new_secret()


def test_signature_validates_with_the_python_client() -> None:
    secret = new_secret()
    headers = signed_headers(secret, "msg_1", 1_700_000_000, BODY)
    assert headers["content-type"] == "application/json"
    assert headers["webhook-signature"].startswith("v1,")
    key = WebhookSigningSecret(key=secret)
    Webhooks.validate(headers=headers, body=BODY.decode(), secret=key)
    request = httpx.Request("POST", "https://example.test/hook", headers=headers, content=BODY)
    Webhooks.validate(request=request, secret=key)


def test_signature_is_standard_base64_of_hmac() -> None:
    secret = new_secret()
    headers = signed_headers(secret, "msg_2", 42, BODY)
    digest = hmac.new(secret_bytes(secret), b"msg_2.42." + BODY, hashlib.sha256).digest()
    # Node compares the base64 strings themselves.
    assert headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()


@pytest.mark.parametrize("field", ["body", "id", "timestamp", "secret"])
def test_tampering_is_detected(field: str) -> None:
    secret = new_secret()
    headers = signed_headers(secret, "msg_3", 1_700_000_000, BODY)
    body = BODY.decode()
    key = WebhookSigningSecret(key=secret)
    if field == "body":
        body = body.replace("succeeded", "failed")
    elif field == "id":
        headers["webhook-id"] = "msg_4"
    elif field == "timestamp":
        headers["webhook-timestamp"] = "1700000001"
    else:
        key = WebhookSigningSecret(key=new_secret())
    with pytest.raises(InvalidSignatureError):
        Webhooks.validate(headers=headers, body=body, secret=key)
