"""Replicate's prediction object, rendered from a ``PredictionRecord``.

One renderer for every place the object leaves the platform: the gateway's responses and the
scheduler's webhook bodies, which Replicate promises are "the same structure as the object
returned by the get a prediction API".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cogplane.common.contracts.predictions import TERMINAL, PredictionRecord

PUBLIC_METRICS = ("predict_time", "total_time")


def iso(value: datetime) -> str:
    """Replicate's timestamp format (ISO 8601, Z for UTC)."""
    return value.isoformat().replace("+00:00", "Z")


def stream_token(key: bytes, prediction_id: str) -> str:
    """The unguessable token of a prediction's stream URL (an HMAC of its id)."""
    digest = hmac.new(key, f"stream:{prediction_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def stream_token_valid(key: bytes, prediction_id: str, token: str) -> bool:
    """Whether ``token`` opens the stream of ``prediction_id`` (constant time)."""
    return hmac.compare_digest(stream_token(key, prediction_id), token)


def prediction_urls(
    record: PredictionRecord, base: str, stream_key: bytes | None = None
) -> dict[str, str]:
    """``urls``: get, cancel, web, and stream for predictions of streaming models.

    Args:
        record: The prediction.
        base: The public base URL, without ``/v1`` and without a trailing slash.
        stream_key: The stream token key; without it no ``stream`` URL is given.
    """
    urls = {
        "get": f"{base}/v1/predictions/{record.id}",
        "cancel": f"{base}/v1/predictions/{record.id}/cancel",
        "web": f"{base}/p/{record.id}",
    }
    if record.streaming and stream_key is not None:
        token = stream_token(stream_key, record.id)
        urls["stream"] = f"{base}/v1/predictions/{record.id}/stream?token={token}"
    return urls


def display_input(value: Any, base: str) -> Any:
    """Inputs as the caller gave them.

    The gateway stores our own file URLs as signed download links (so that Cog can fetch them
    without a token); the API, its webhooks and its streams show the file's URL instead.
    """
    if isinstance(value, dict):
        return {k: display_input(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [display_input(v, base) for v in value]
    prefix = f"{base}/v1/files/"
    if isinstance(value, str) and value.startswith(prefix):
        parts = urlsplit(value)
        file_id = value[len(prefix) :].split("?", 1)[0].split("/", 1)[0]
        if file_id and "signature" in parse_qs(parts.query):
            return f"{prefix}{file_id}"
    return value


def render_prediction(
    record: PredictionRecord,
    base: str,
    *,
    stream_key: bytes | None = None,
    pending: bool = False,
) -> dict[str, Any]:
    """The prediction object as ``GET /v1/predictions/{id}`` returns it.

    Args:
        record: The prediction.
        base: The public base URL, without ``/v1`` and without a trailing slash.
        stream_key: The stream token key (see ``prediction_urls``).
        pending: Show an unfinished prediction as ``starting`` without output (the answer to
            ``Prefer: wait`` that timed out: clients treat any other status as final).
    """
    unfinished = pending and record.status not in TERMINAL
    deployment = {"deployment": record.deployment} if record.deployment else {}
    return {
        **deployment,
        "id": record.id,
        "model": record.model,
        "version": record.version,
        "input": display_input(record.input, base),
        "output": None if unfinished else record.output,
        "logs": record.logs,
        "error": record.error,
        "status": "starting" if unfinished else record.status,
        "source": record.source,
        "data_removed": record.data_removed,
        "created_at": iso(record.created_at),
        "started_at": iso(record.started_at) if record.started_at else None,
        "completed_at": iso(record.completed_at) if record.completed_at else None,
        "metrics": {k: v for k, v in record.metrics.items() if k in PUBLIC_METRICS},
        "urls": prediction_urls(record, base, stream_key),
    }
