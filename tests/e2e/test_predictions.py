"""Predictions end to end with the official client: gateway, scheduler, autoscaler, runner, Cog."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import replicate
from replicate.exceptions import ModelError, ReplicateError
from typer.testing import CliRunner

from cogplane.cli.devstack import DevStack
from cogplane.cli.main import app

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).parents[2] / "examples"


def cli(stack: DevStack, *args: str) -> str:
    assert stack.token is not None
    env = {"COGPLANE_URL": stack.gateway_url, "COGPLANE_TOKEN": stack.token}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


_pushed: dict[tuple[str, str], tuple[str, str]] = {}


def pushed(stack: DevStack, example: str) -> tuple[str, str]:
    """A public model with one version of ``example``: (owner/name, version id), pushed once."""
    key = (stack.gateway_url, example)
    if key not in _pushed:
        _pushed[key] = _push(stack, example)
    return _pushed[key]


def _push(stack: DevStack, example: str) -> tuple[str, str]:
    model = f"dev/{example}-{uuid.uuid4().hex[:6]}"
    cli(stack, "models", "create", model, "--visibility", "public")
    version = cli(stack, "push", model, "--path", str(EXAMPLES / example)).strip().splitlines()[-1]
    return model, version


def client(stack: DevStack) -> replicate.Client:
    return replicate.Client(api_token=stack.token, base_url=stack.gateway_url)


def until(probe: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_run_with_a_version_and_with_the_latest(stack: DevStack) -> None:
    model, version = pushed(stack, "hello")
    rc = client(stack)
    assert "ada" in rc.run(f"{model}:{version}", input={"name": "ada"})
    assert "bob" in rc.run(model, input={"name": "bob"})


def test_create_reload_wait_and_the_prediction_object(stack: DevStack) -> None:
    model, version = pushed(stack, "hello")
    rc = client(stack)
    prediction = rc.predictions.create(version=version, input={"name": "cy"})
    assert prediction.status in ("starting", "processing", "succeeded")
    assert prediction.urls["get"] == f"{stack.gateway_url}/v1/predictions/{prediction.id}"
    prediction.wait()
    assert prediction.status == "succeeded"
    assert "cy" in prediction.output
    assert prediction.metrics is not None
    assert prediction.metrics["predict_time"] > 0
    prediction.reload()
    assert prediction.completed_at is not None
    raw = httpx.get(
        prediction.urls["get"], headers={"Authorization": f"Bearer {stack.token}"}
    ).json()
    assert set(raw) >= {
        "id",
        "model",
        "version",
        "input",
        "output",
        "logs",
        "error",
        "status",
        "created_at",
        "urls",
        "data_removed",
        "metrics",
        "source",
    }
    assert raw["model"] == model
    assert raw["version"] == version
    assert raw["source"] == "api"


def test_invalid_input_is_422_naming_fields_and_admits_nothing(stack: DevStack) -> None:
    _model, version = pushed(stack, "form")
    before = [p.id for p in client(stack).predictions.list().results]
    response = httpx.post(
        f"{stack.gateway_url}/v1/predictions",
        headers={"Authorization": f"Bearer {stack.token}"},
        json={"version": version, "input": {"style": "loud", "width": 100}},
    )
    assert response.status_code == 422
    fields = {f["field"] for f in response.json()["invalid_fields"]}
    assert fields == {"input", "input.style", "input.width"}
    assert [p.id for p in client(stack).predictions.list().results] == before


def test_unknown_version_is_replicates_422(stack: DevStack) -> None:
    response = httpx.post(
        f"{stack.gateway_url}/v1/predictions",
        headers={"Authorization": f"Bearer {stack.token}"},
        json={"version": "f" * 64, "input": {}},
    )
    assert response.status_code == 422
    assert response.json()["title"] == "Invalid version or not permitted"


def test_prefer_wait_times_out_as_starting(stack: DevStack) -> None:
    _model, version = pushed(stack, "slow")
    response = httpx.post(
        f"{stack.gateway_url}/v1/predictions",
        headers={"Authorization": f"Bearer {stack.token}", "Prefer": "wait=1"},
        json={"version": version, "input": {"seconds": 3}},
        timeout=10,
    )
    assert response.status_code == 201
    assert response.headers["Preference-Applied"] == "wait=1"
    assert response.json()["status"] == "starting"
    done = until(
        lambda: (
            (p := client(stack).predictions.get(response.json()["id"])).status == "succeeded" and p
        )
    )
    assert done.output.startswith("slept 3")


def test_cancel_while_running_and_while_queued(stack: DevStack) -> None:
    _model, version = pushed(stack, "slow")
    rc = client(stack)
    running = rc.predictions.create(version=version, input={"seconds": 30})
    queued = rc.predictions.create(version=version, input={"seconds": 30})
    until(lambda: rc.predictions.get(running.id).status == "processing")
    assert rc.predictions.get(queued.id).status == "starting"
    queued_after = rc.predictions.cancel(queued.id)
    assert queued_after.status == "canceled"
    rc.predictions.cancel(running.id)
    canceled = until(lambda: (p := rc.predictions.get(running.id)).status == "canceled" and p)
    assert "tick 0" in canceled.logs
    assert rc.predictions.get(queued.id).started_at is None  # it never ran


def test_a_failing_predictor_raises_model_error(stack: DevStack) -> None:
    model, version = pushed(stack, "raising")
    with pytest.raises(ModelError) as caught:
        client(stack).run(f"{model}:{version}", input={"x": -1})
    assert caught.value.prediction.status == "failed"
    assert caught.value.prediction.error


def test_paginate_lists_newest_first(stack: DevStack) -> None:
    ids = [p.id for page in replicate.paginate(client(stack).predictions.list) for p in page]
    assert ids
    assert len(ids) == len(set(ids))


def test_private_predictions_of_others_are_404(stack: DevStack) -> None:
    _model, version = pushed(stack, "hello")
    prediction = client(stack).predictions.create(version=version, input={"name": "x"})
    with pytest.raises(ReplicateError) as caught:
        replicate.Client(api_token="r8_" + "y" * 37, base_url=stack.gateway_url).predictions.get(
            prediction.id
        )
    assert caught.value.status == 401
