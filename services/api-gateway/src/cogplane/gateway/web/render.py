"""Rendering pages: one Jinja2 environment (autoescaping everything), the layout's context."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from cogplane.common.predictions_json import iso

HERE = Path(__file__).parent
STATIC = HERE / "static"


def _when(value: datetime | str | None) -> str:
    """A timestamp as ISO 8601 (pages turn it into local time with a script)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else iso(value)


ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["when"] = _when


def page(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render ``template`` with the layout's context (``viewer``, ``csrf``) and ``context``."""
    state = request.state
    html = ENV.get_template(template).render(
        request=request,
        viewer=getattr(state, "web_viewer", None),
        csrf=getattr(state, "csrf", ""),
        dev_sign_in=getattr(state, "dev_sign_in", False),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
            # Own scripts and styles only; images and media may come from outputs (data: too).
            "Content-Security-Policy": (
                "default-src 'self'; img-src 'self' data: blob: https:; "
                "media-src 'self' data: blob: https:; style-src 'self'; script-src 'self'; "
                "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
            ),
        },
    )
