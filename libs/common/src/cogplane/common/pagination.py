"""Keyset pagination cursors, the same in every listing: opaque to clients, checked on return."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

from cogplane.common.errors import InvalidInput

# Row ids are hex (uuid4) or lowercase base32 (predictions): nothing else comes back from us.
_ROW_ID = re.compile(r"[0-9a-z]{1,64}")


def encode_cursor(at: datetime, row_id: str) -> str:
    """The cursor of the position just after the row (``at``, ``row_id``)."""
    raw = json.dumps({"t": at.isoformat(), "id": row_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The position a cursor names; one we did not make is a 422 naming ``cursor``."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        at, row_id = datetime.fromisoformat(data["t"]), str(data["id"])
        if at.tzinfo is None or not _ROW_ID.fullmatch(row_id):
            raise ValueError("not a cursor we made")
        return at.astimezone(UTC), row_id
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        invalid = {"type": "cursor", "field": "cursor", "description": "Invalid cursor"}
        raise InvalidInput([invalid]) from exc
