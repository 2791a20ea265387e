"""``cogplane push``: pack a Cog project, upload it, follow the build to its version."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from cogplane.cli.client import Api, ApiError
from cogplane.common import archive
from cogplane.common.errors import CogplaneError

POLL_INTERVAL = 0.5


class PushFailed(Exception):
    """The push or its build failed; the message says why."""


def push(api: Api, model: str, path: Path, out: Console, *, timeout: float = 3600) -> str:
    """Push ``path`` to ``model`` (``owner/name``) and return the new version's id."""
    owner, _, name = model.partition("/")
    if not owner or not name or "/" in name:
        raise PushFailed(f"{model!r} is not a model reference: use OWNER/NAME")
    try:
        data = archive.pack(path)
    except CogplaneError as exc:
        raise PushFailed(exc.detail) from exc
    out.print(f"Uploading {path} ({len(data) / 1024:.1f} KiB) to {owner}/{name}")
    try:
        build = api.request(
            "POST",
            f"/v1/models/{owner}/{name}/builds",
            content=data,
            headers={"Content-Type": "application/gzip"},
        )
    except ApiError as exc:
        raise PushFailed(str(exc)) from exc
    return follow(api, build, out, timeout=timeout)


def follow(api: Api, build: dict[str, Any], out: Console, *, timeout: float) -> str:
    """Print the build's logs as they arrive; the version id when it is ready."""
    deadline = time.monotonic() + timeout
    interactive = out.is_terminal
    status = out.status("Building ...") if interactive else None
    if status is not None:
        status.start()
    try:
        offset = 0
        while True:
            build = api.request("GET", f"/v1/builds/{build['id']}", params={"logs_offset": offset})
            if build["logs"]:
                sys.stdout.write(build["logs"])
                sys.stdout.flush()
            offset = build["logs_offset"]
            if build["status"] != "building":
                break
            if time.monotonic() > deadline:
                raise PushFailed(
                    f"the build did not finish within {timeout:.0f}s (build {build['id']})"
                )
            time.sleep(POLL_INTERVAL)
    except ApiError as exc:
        raise PushFailed(str(exc)) from exc
    finally:
        if status is not None:
            status.stop()
    if build["status"] == "failed":
        raise PushFailed(build["error"] or "the build failed")
    return str(build["version"])
