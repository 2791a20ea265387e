"""Where the CLI finds the platform: flags, then ``COGPLANE_URL``/``COGPLANE_TOKEN``, then login."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8700"


def config_path() -> Path:
    """The login file (``$XDG_CONFIG_HOME/cogplane/config.json``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cogplane" / "config.json"


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str | None


def load(url: str | None = None, token: str | None = None) -> Credentials:
    """Resolve the URL and token to use."""
    saved: dict[str, str] = {}
    path = config_path()
    if path.exists():
        saved = json.loads(path.read_text())
    return Credentials(
        url=(url or os.environ.get("COGPLANE_URL") or saved.get("url") or DEFAULT_URL).rstrip("/"),
        token=token or os.environ.get("COGPLANE_TOKEN") or saved.get("token"),
    )


def save(credentials: Credentials) -> Path:
    """Store the login (readable by the user only)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"url": credentials.url, "token": credentials.token}))
    path.chmod(0o600)
    return path
