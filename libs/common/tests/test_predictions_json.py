"""Signed links to our files are shown as the files' URLs, everywhere a prediction is rendered."""

from __future__ import annotations

from cogplane.common.predictions_json import display_input

BASE = "https://api.example.com"


def test_signed_links_become_file_urls_at_any_depth() -> None:
    signed = f"{BASE}/v1/files/abc123/download/cat.png?owner=o&expiry=9&signature=s%3D"
    given = {"image": signed, "more": [signed, {"deep": signed}], "n": 3}
    plain = f"{BASE}/v1/files/abc123"
    assert display_input(given, BASE) == {"image": plain, "more": [plain, {"deep": plain}], "n": 3}


def test_other_strings_are_left_alone() -> None:
    values = {
        "url": "https://elsewhere.example.com/v1/files/abc?signature=x",
        "unsigned": f"{BASE}/v1/files/abc/download",
        "text": "hello",
    }
    assert display_input(values, BASE) == values
