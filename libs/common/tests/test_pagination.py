"""Cursors round-trip, and anything we did not make is a 422 naming ``cursor``."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from cogplane.common.errors import InvalidInput
from cogplane.common.pagination import decode_cursor, encode_cursor

AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def raw(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize("row_id", ["0f" * 16, "r3466dn6vjwtcfcbbf4w3e3amu"])
def test_round_trip_for_hex_and_base32_ids(row_id: str) -> None:
    assert decode_cursor(encode_cursor(AT, row_id)) == (AT, row_id)
    assert decode_cursor(None) is None


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        raw(b"[1]"),
        raw(b'{"t": "yesterday", "id": "abc"}'),
        raw(b'{"t": "2024-01-01T00:00:00", "id": "abc"}'),
        raw(b'{"t": "2024-01-01T00:00:00+00:00", "id": "a\\u0000b"}'),
        raw(b'{"t": "0001-01-01T00:00:00+14:00", "id": "abc"}'),
    ],
)
def test_foreign_cursors_are_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(cursor)
    assert caught.value.extra["invalid_fields"][0]["field"] == "cursor"
