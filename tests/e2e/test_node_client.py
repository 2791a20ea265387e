"""The official Node client (npm `replicate`), unchanged, against the gateway (if Node exists)."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cogplane.cli.devstack import DevStack
from cogplane.cli.main import app

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("node") is None or shutil.which("npm") is None, reason="no Node.js"
    ),
]
HERE = Path(__file__).parent
EXAMPLES = HERE.parents[1] / "examples"
CLIENT_VERSION = "1.4.0"


def push(stack: DevStack, example: str) -> tuple[str, str]:
    assert stack.token is not None
    env = {"COGPLANE_URL": stack.gateway_url, "COGPLANE_TOKEN": stack.token}
    model = f"dev/node-{example}-{uuid.uuid4().hex[:6]}"
    for args in (
        ["models", "create", model, "--visibility", "public"],
        ["push", model, "--path", str(EXAMPLES / example)],
    ):
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
    return model, result.output.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def node_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the official client installed from the npm registry."""
    root = tmp_path_factory.mktemp("node")
    (root / "package.json").write_text(
        json.dumps({"name": "compat", "type": "module", "private": True})
    )
    subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", f"replicate@{CLIENT_VERSION}"],
        cwd=root,
        check=True,
        timeout=300,
    )
    shutil.copy(HERE / "node" / "compat.mjs", root / "compat.mjs")
    return root


def test_node_client_runs_streams_and_lists(stack: DevStack, node_client: Path) -> None:
    model, version = push(stack, "hello")
    stream_model, stream_version = push(stack, "stream")
    result = subprocess.run(
        [
            "node",
            "compat.mjs",
            f"{stack.gateway_url}/v1",
            str(stack.token),
            model,
            version,
            f"{stream_model}:{stream_version}",
        ],
        cwd=node_client,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["account"] == "dev"
    assert got["model"] == model.split("/")[1]
    assert got["version"] == version
    assert "node" in got["runVersion"]
    assert "latest" in got["runModel"]
    assert got["waitedStatus"] == "succeeded"
    assert "poll" in got["waitedOutput"]
    assert got["listed"] >= 3
    assert got["streamed"].split() == ["one", "two", "three"]
    assert got["hardware"] is True
