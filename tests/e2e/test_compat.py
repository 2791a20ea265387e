"""The official ``replicate`` client (1.0.7) against the gateway: streams, file inputs, webhooks."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import replicate
from replicate.helpers import FileOutput
from replicate.webhook import Webhooks
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
        model = f"dev/{example}-{uuid.uuid4().hex[:6]}"
        cli(stack, "models", "create", model, "--visibility", "public")
        output = cli(stack, "push", model, "--path", str(EXAMPLES / example))
        _pushed[key] = (model, output.strip().splitlines()[-1])
    return _pushed[key]


def client(stack: DevStack) -> replicate.Client:
    return replicate.Client(api_token=stack.token, base_url=stack.gateway_url)


def until(probe: Any, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout}s")


# -- a local webhook receiver --------------------------------------------------------------------


@dataclass
class Delivery:
    headers: dict[str, str]
    body: str

    @property
    def prediction(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """Records every POST; answers the queued statuses first, then 200."""

    statuses: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def handle(self, headers: dict[str, str], body: str) -> int:
        with self.lock:
            self.deliveries.append(Delivery(headers, body))
            return self.statuses.pop(0) if self.statuses else 200

    def received(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recorder = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            code = recorder.handle(dict(self.headers.items()), body.decode("utf-8"))
            self.send_response(code)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# -- tests ---------------------------------------------------------------------------------------


def test_stream_yields_the_tokens_of_the_prompt(stack: DevStack) -> None:
    model, version = pushed(stack, "stream")
    words = ["the", "quick", "brown", "fox", "jumps"]
    events = list(
        client(stack).stream(f"{model}:{version}", input={"prompt": " ".join(words), "delay": 0.05})
    )
    kinds = [event.event.value for event in events]
    assert kinds[-1] == "done"
    assert "error" not in kinds
    outputs = [str(event) for event in events if event.event.value == "output"]
    assert len(outputs) == len(words)
    assert "".join(outputs).split() == words
    logs = "".join(event.data for event in events if event.event.value == "logs")
    assert "token 0" in logs


def test_module_level_stream_with_the_environment(
    stack: DevStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``replicate.stream`` as the README shows it: configured by the environment only."""
    model, version = pushed(stack, "stream")
    assert stack.token is not None
    monkeypatch.setenv("REPLICATE_API_TOKEN", stack.token)
    monkeypatch.setenv("REPLICATE_BASE_URL", stack.gateway_url)
    # The default client builds its HTTP client on first use, from the environment.
    monkeypatch.setattr(replicate.default_client, "_Client__client", None)
    text = "".join(str(e) for e in replicate.stream(f"{model}:{version}", input={"prompt": "a b"}))
    assert text.split() == ["a", "b"]


def test_file_input_is_uploaded_and_the_output_is_a_file(stack: DevStack, tmp_path: Path) -> None:
    model, version = pushed(stack, "files")
    rc = client(stack)
    name = f"in-{uuid.uuid4().hex[:8]}.txt"
    path = tmp_path / name
    path.write_bytes(b"hello files\n")
    with path.open("rb") as handle:
        output = rc.run(f"{model}:{version}", input={"file": handle})
    assert isinstance(output, FileOutput)
    assert output.url.startswith(("data:", "https:"))
    assert output.read() == b"HELLO FILES\n"
    uploaded = [f for f in rc.files.list() if f.name == name]
    assert len(uploaded) == 1, "the client uploaded the file through POST /v1/files"
    assert uploaded[0].size == len(b"hello files\n")


def test_webhooks_are_signed_and_in_order(stack: DevStack, receiver: Receiver) -> None:
    _model, version = pushed(stack, "hello")
    rc = client(stack)
    secret = rc.webhooks.default.secret()
    assert secret.key.startswith("whsec_")
    prediction = rc.predictions.create(
        version=version,
        input={"name": "hook"},
        webhook=receiver.url,
        webhook_events_filter=["start", "completed"],
    )
    until(
        lambda: any(d.prediction["status"] == "succeeded" for d in receiver.received()),
        30,
        "a completed webhook",
    )
    time.sleep(0.5)  # nothing else is due; anything extra would arrive now
    deliveries = receiver.received()
    for delivery in deliveries:
        Webhooks.validate(
            headers=delivery.headers, body=delivery.body, secret=secret, tolerance=300
        )
        assert delivery.prediction["id"] == prediction.id
        assert delivery.headers["content-type"] == "application/json"
    statuses = [d.prediction["status"] for d in deliveries]
    assert statuses == ["starting", "succeeded"], statuses
    assert len({d.headers["webhook-id"] for d in deliveries}) == 2
    final = deliveries[-1].prediction
    assert "hook" in final["output"]
    assert final["urls"]["get"] == f"{stack.gateway_url}/v1/predictions/{prediction.id}"
    # A body tampered with fails validation.
    with pytest.raises(ValueError, match="signature"):
        Webhooks.validate(
            headers=deliveries[-1].headers, body=deliveries[-1].body + " ", secret=secret
        )


def test_the_completed_webhook_is_retried_with_the_same_id(
    stack: DevStack, receiver: Receiver
) -> None:
    _model, version = pushed(stack, "hello")
    rc = client(stack)
    secret = rc.webhooks.default.secret()
    receiver.statuses = [500, 500]
    prediction = rc.predictions.create(
        version=version,
        input={"name": "retry"},
        webhook=receiver.url,
        webhook_events_filter=["completed"],
    )
    until(lambda: len(receiver.received()) >= 3, 40, "three webhook attempts")
    time.sleep(0.5)
    deliveries = receiver.received()
    assert len(deliveries) == 3, "answered 200 on the third attempt: no more retries"
    assert len({d.headers["webhook-id"] for d in deliveries}) == 1
    for delivery in deliveries:
        Webhooks.validate(headers=delivery.headers, body=delivery.body, secret=secret)
        assert delivery.prediction["id"] == prediction.id
        assert delivery.prediction["status"] == "succeeded"
