"""File outputs stored by the platform (Cog's --upload-url) and served as download URLs.

A platform of its own: outputs stored as URLs (``COGPLANE_RUNNER_FILE_OUTPUTS=url``; the shared
platform of the other tests is on http, where "auto" inlines outputs as data URLs) and a short
retention period, to see the stored files go with the prediction's data.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import replicate
from typer.testing import CliRunner

from cogplane.cli.devstack import DEFAULT_PORTS, DevStack
from cogplane.cli.main import app
from cogplane.common.embedded import free_port

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).parents[2] / "examples"
RETENTION = 4.0


@pytest.fixture(scope="module")
def url_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    platform = DevStack(
        tmp_path_factory.mktemp("outputs") / ".cogplane",
        ports={name: free_port() for name in DEFAULT_PORTS},
        durable=False,
        extra_env={
            "COGPLANE_RUNNER_FILE_OUTPUTS": "url",
            "COGPLANE_RUNNER_CPU_SLOTS": "1",
            "COGPLANE_SCHEDULER_RETENTION_API": str(RETENTION),
            "COGPLANE_SCHEDULER_RETENTION_INTERVAL": "0.5",
            "COGPLANE_CONNECT_RETRY_MAX": "1",
        },
    )
    platform.start()
    yield platform
    platform.stop()


def push_files_model(stack: DevStack) -> str:
    assert stack.token is not None
    env = {"COGPLANE_URL": stack.gateway_url, "COGPLANE_TOKEN": stack.token}
    model = f"dev/files-{uuid.uuid4().hex[:6]}"
    for args in (
        ["models", "create", model, "--visibility", "public"],
        ["push", model, "--path", str(EXAMPLES / "files")],
    ):
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
    return model


def until(probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_output_files_are_urls_that_download_and_expire(url_stack: DevStack) -> None:
    model = push_files_model(url_stack)
    client = replicate.Client(api_token=url_stack.token, base_url=url_stack.gateway_url)
    text = base64.b64encode(b"stored by the platform").decode()
    prediction = client.predictions.create(
        model=model, input={"file": f"data:text/plain;base64,{text}"}
    )
    prediction.wait()
    assert prediction.status == "succeeded", prediction.error
    output = prediction.output
    assert isinstance(output, str)  # an http: URL: the clients leave it a string
    assert output.startswith(f"{url_stack.gateway_url}/deliveries/{prediction.id}/")
    assert output.endswith("/upper.txt")

    anonymous = httpx.get(output)  # as the Node client fetches outputs: no token
    assert anonymous.status_code == 200
    assert anonymous.content == b"STORED BY THE PLATFORM"
    assert anonymous.headers["content-type"].startswith("text/plain")
    with_token = httpx.get(output, headers={"Authorization": f"Bearer {url_stack.token}"})
    assert with_token.content == b"STORED BY THE PLATFORM"  # as the Python client does

    # Retention removes the prediction's data and the stored file with it.
    get = f"{url_stack.gateway_url}/v1/predictions/{prediction.id}"
    auth = {"Authorization": f"Bearer {url_stack.token}"}

    def removed() -> Any:
        body = httpx.get(get, headers=auth).json()
        return body if body["data_removed"] else None

    cleared = until(removed, timeout=RETENTION + 15)
    assert cleared["output"] is None
    gone = httpx.get(output)
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
