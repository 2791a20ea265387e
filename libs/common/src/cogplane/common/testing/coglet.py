"""Run the real Cog server (coglet) on a project with a given schema, for tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from cogplane.common.embedded import die_with_parent, free_port


@contextmanager
def coglet(
    project: Path,
    schema: dict[str, Any],
    workdir: Path,
    *,
    predict: str = "predict.py:Predictor",
    concurrency: int | None = None,
    timeout: float = 60.0,
) -> Iterator[str]:
    """Copy ``project`` into ``workdir``, write ``schema`` where coglet reads it, start coglet.

    Yields the server's base URL once ``/health-check`` reports READY; stops it afterwards.
    """
    shutil.copytree(project, workdir)
    (workdir / ".cog").mkdir(exist_ok=True)
    (workdir / ".cog" / "openapi_schema.json").write_text(json.dumps(schema))
    port = free_port()
    # coglet starts its worker with the `python` on PATH: make it this interpreter.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = dict(os.environ) | {"PORT": str(port), "COG_PREDICT_TYPE_STUB": predict, "PATH": path}
    if concurrency:
        env["COG_MAX_CONCURRENCY"] = str(concurrency)
    log = (workdir.parent / f"{workdir.name}.coglet.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cog.server.http", "--host", "127.0.0.1"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - one prctl call
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"coglet exited with {proc.returncode}")
        try:
            status = httpx.get(f"{url}/health-check", timeout=1).json().get("status")
        except httpx.HTTPError:
            status = None
        if status == "READY":
            return
        if status == "SETUP_FAILED":
            raise RuntimeError("the model's setup() failed")
        time.sleep(0.05)
    raise TimeoutError(f"coglet not ready within {timeout}s (last status {status})")
