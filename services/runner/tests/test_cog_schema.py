"""cog_schema.py on the examples: golden schema facts, then real coglet validating with them."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

TESTS = Path(__file__).parent
SCRIPT = TESTS.parent / "src" / "cogplane" / "runner" / "build" / "cog_schema.py"
EXAMPLES = TESTS.parents[2] / "examples"
CASES = TESTS / "schema_cases"

JSON = dict[str, Any]
Serve = Callable[..., httpx.Client]


def run_script(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), *args]
    return subprocess.run(
        command, cwd=project, capture_output=True, text=True, timeout=60, check=False
    )


def copy_project(source: Path, tmp_path: Path) -> Path:
    project = tmp_path / source.name
    shutil.copytree(source, project)
    return project


def build(project: Path) -> JSON:
    """Generates the schema as the runner will, and bundles it where coglet looks for it."""
    config = yaml.safe_load((project / "cog.yaml").read_text())
    args = ["--predict", config["predict"]]
    if "train" in config:
        args += ["--train", config["train"]]
    result = run_script(project, *args)
    assert result.returncode == 0, result.stderr
    output: JSON = json.loads(result.stdout)
    (project / ".cog").mkdir()
    (project / ".cog" / "openapi_schema.json").write_text(json.dumps(output["openapi_schema"]))
    return output


def schemas(output: JSON) -> JSON:
    components: JSON = output["openapi_schema"]["components"]["schemas"]
    return components


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_setup(client: httpx.Client, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"coglet exited with {process.returncode}:\n{log.read_text()}")
        try:
            health: JSON = client.get("/health-check").json()
        except httpx.TransportError:
            health = {}
        if health.get("status") in ("READY", "SETUP_FAILED"):
            return
        time.sleep(0.05)
    pytest.fail(f"coglet did not finish setup:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stops coglet and its Python worker, which share the process group started for coglet."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(10)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group, worker included
    process.wait(5)


@contextmanager
def coglet(project: Path, *, train: bool, concurrency: int | None) -> Iterator[httpx.Client]:
    """Runs coglet as the runner will: CWD = project, refs from cog.yaml, slots from the script."""
    config = yaml.safe_load((project / "cog.yaml").read_text())
    port = free_port()
    env = {**os.environ, "PORT": str(port), "COG_PREDICT_TYPE_STUB": config["predict"]}
    # coglet starts its Python worker as `python` from PATH, so the model's venv must come first.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if "train" in config:
        env["COG_TRAIN_TYPE_STUB"] = config["train"]
    if concurrency is not None:
        env["COG_MAX_CONCURRENCY"] = str(concurrency)
    command = [sys.executable, "-m", "cog.server.http", "--host", "127.0.0.1"]
    command += ["--x-mode", "train"] if train else []
    log = project / "coglet.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            cwd=project,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        wait_for_setup(client, process, log)
        yield client
    finally:
        client.close()
        stop(process)


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Starts coglet on a built project; every instance is stopped when the test ends."""
    with ExitStack() as stack:

        def start(
            project: Path, *, train: bool = False, concurrency: int | None = None
        ) -> httpx.Client:
            return stack.enter_context(coglet(project, train=train, concurrency=concurrency))

        yield start


@pytest.fixture
def example(tmp_path: Path) -> Callable[[str], tuple[Path, JSON]]:
    def prepare(name: str) -> tuple[Path, JSON]:
        project = copy_project(EXAMPLES / name, tmp_path)
        return project, build(project)

    return prepare


def wait_until_idle(client: httpx.Client) -> None:
    """coglet answers a sync request a moment before it frees the slot; meanwhile it sends 409."""
    deadline = time.monotonic() + 5
    while client.get("/health-check").json()["status"] == "BUSY" and time.monotonic() < deadline:
        time.sleep(0.01)


def predict(client: httpx.Client, payload: JSON, path: str = "/predictions") -> httpx.Response:
    wait_until_idle(client)
    return client.post(path, json={"input": payload})


def assert_rejected(
    client: httpx.Client, payload: JSON, field: str, path: str = "/predictions"
) -> None:
    response = predict(client, payload, path)
    assert response.status_code == 422, response.text
    locations = [error["loc"] for error in response.json()["detail"]]
    assert ["body", "input", field] in locations, locations


def test_hello_greets_with_the_prefix_read_in_setup(example: Any, serve: Serve) -> None:
    project, output = example("hello")
    assert output["cog_version"] == "0.23.1"
    assert output["concurrency_max"] is None
    document = output["openapi_schema"]
    assert document["openapi"] == "3.0.2"
    assert document["info"] == {"title": "Cog", "version": "0.23.1"}
    assert list(document["paths"]) == [
        "/",
        "/health-check",
        "/predictions",
        "/predictions/{prediction_id}/cancel",
    ]
    assert "x-cog-streaming" not in document["paths"]["/predictions"]["post"]
    assert set(schemas(output)) == {
        "Input",
        "Output",
        "PredictionRequest",
        "PredictionResponse",
        "Status",
        "HTTPValidationError",
        "ValidationError",
    }
    assert schemas(output)["Input"] == {
        "title": "Input",
        "type": "object",
        "properties": {
            "name": {
                "default": "world",
                "description": "Who to greet",
                "title": "Name",
                "type": "string",
                "x-order": 0,
            },
        },
    }
    assert schemas(output)["Output"] == {"title": "Output", "type": "string"}

    client = serve(project)
    response = predict(client, {"name": "bob"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"
    assert response.json()["output"] == "Hello, bob!"
    assert predict(client, {}).json()["output"] == "Hello, world!"
    assert_rejected(client, {"name": 5}, "name")


def test_stream_is_an_iterator_with_sse(example: Any, serve: Serve) -> None:
    project, output = example("stream")
    assert schemas(output)["Output"] == {
        "title": "Output",
        "type": "array",
        "items": {"type": "string"},
        "x-cog-array-type": "iterator",
        "x-cog-array-display": "concatenate",
    }
    assert output["openapi_schema"]["paths"]["/predictions"]["post"]["x-cog-streaming"] is True
    assert schemas(output)["Input"]["required"] == ["prompt"]

    client = serve(project)
    response = predict(client, {"prompt": "one two three", "delay": 0})
    assert response.status_code == 200, response.text
    assert response.json()["output"] == ["one ", "two ", "three "]
    assert "token 2" in response.json()["logs"]
    wait_until_idle(client)
    events = client.post(
        "/predictions",
        json={"input": {"prompt": "a b", "delay": 0}},
        headers={"Accept": "text/event-stream"},
    )
    assert events.status_code == 200, events.text
    assert "event: output" in events.text
    assert "event: completed" in events.text
    assert_rejected(client, {"prompt": "x", "delay": 5}, "delay")
    assert_rejected(client, {"delay": 1}, "prompt")


def test_files_turns_a_data_url_into_an_uppercased_file(example: Any, serve: Serve) -> None:
    project, output = example("files")
    assert schemas(output)["Input"]["properties"]["file"] == {
        "description": "A UTF-8 text file (URL or data: URL)",
        "format": "uri",
        "title": "File",
        "type": "string",
        "x-cog-accept": "text/*",
        "x-order": 0,
    }
    assert schemas(output)["Output"] == {"title": "Output", "type": "string", "format": "uri"}

    client = serve(project)
    source = "data:text/plain;base64," + base64.b64encode(b"hello files\n").decode()
    response = predict(client, {"file": source})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded", response.text
    media, encoded = response.json()["output"].split(",", 1)
    assert media == "data:text/plain;base64"
    assert base64.b64decode(encoded) == b"HELLO FILES\n"
    assert_rejected(client, {}, "file")


def test_concurrent_declares_four_slots_and_uses_them(example: Any, serve: Serve) -> None:
    project, output = example("concurrent")
    assert output["concurrency_max"] == 4
    seconds = schemas(output)["Input"]["properties"]["seconds"]
    assert (seconds["default"], seconds["minimum"], seconds["maximum"]) == (0.5, 0, 60)

    client = serve(project, concurrency=output["concurrency_max"])
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: predict(client, {"seconds": 0.5}), range(4)))
    assert [r.status_code for r in responses] == [200] * 4
    assert {r.json()["output"] for r in responses} == {"slept 0.5"}
    assert time.monotonic() - started < 1.5  # four at once, not one after another
    assert_rejected(client, {"seconds": "soon"}, "seconds")


def test_form_follows_cogs_input_rules(example: Any, serve: Serve) -> None:
    project, output = example("form")
    components = schemas(output)
    inputs = components["Input"]
    properties = inputs["properties"]
    assert list(properties) == [
        "text",
        "style",
        "repeat",
        "width",
        "temperature",
        "api_key",
        "suffix",
        "tags",
    ]
    assert [p["x-order"] for p in properties.values()] == list(range(8))
    assert inputs["required"] == ["text"]
    assert all(p["description"] for p in properties.values())
    assert components["style"] == {
        "title": "style",
        "description": "An enumeration.",
        "enum": ["plain", "shout", "whisper"],
        "type": "string",
    }
    assert components["repeat"]["enum"] == [1, 2, 3]
    assert components["repeat"]["type"] == "integer"
    assert properties["style"]["allOf"] == [{"$ref": "#/components/schemas/style"}]
    assert "title" not in properties["style"]
    assert (properties["width"]["minimum"], properties["width"]["maximum"]) == (0, 80)
    assert (properties["text"]["minLength"], properties["text"]["maxLength"]) == (1, 200)
    api_key = properties["api_key"]
    assert api_key["default"] is None
    assert api_key["nullable"] is True
    assert (api_key["format"], api_key["writeOnly"], api_key["x-cog-secret"]) == (
        "password",
        True,
        True,
    )
    assert properties["suffix"]["nullable"] is True
    assert "default" not in properties["suffix"]
    assert properties["tags"]["items"] == {"type": "string"}
    assert properties["tags"]["default"] == []

    client = serve(project)
    response = predict(client, {"text": "hi", "style": "shout", "repeat": 2})
    assert response.status_code == 200, response.text
    assert response.json()["output"] == "HI HI|t=0.7|no key"
    full = {"text": "a", "repeat": 3, "width": 12, "api_key": "k", "suffix": "!", "tags": ["x"]}
    assert predict(client, full).json()["output"] == "a a a ! [x] |t=0.7|with key"
    assert_rejected(client, {"text": "hi", "style": "loud"}, "style")
    assert_rejected(client, {"text": "hi", "repeat": 4}, "repeat")
    assert_rejected(client, {"text": "hi", "width": 81}, "width")
    assert_rejected(client, {"text": "hi", "temperature": "hot"}, "temperature")
    assert_rejected(client, {"text": ""}, "text")
    assert_rejected(client, {"style": "plain"}, "text")


def test_train_merges_both_schemas_and_serves_trainings(example: Any, serve: Serve) -> None:
    project, output = example("train")
    document = output["openapi_schema"]
    assert {"/predictions", "/trainings", "/trainings/{training_id}/cancel"} <= set(
        document["paths"]
    )
    components = schemas(output)
    assert components["Input"]["required"] == ["prompt"]
    assert components["TrainingInput"]["title"] == "TrainingInput"
    assert list(components["TrainingInput"]["properties"]) == ["steps", "suffix"]
    assert components["TrainingOutput"]["properties"]["weights"]["format"] == "uri"
    assert components["TrainingRequest"]["properties"]["input"] == {
        "$ref": "#/components/schemas/TrainingInput"
    }
    assert document["paths"]["/trainings"]["post"]["operationId"] == "train_trainings_post"

    client = serve(project, train=True)
    response = predict(client, {"steps": 2, "suffix": "v2"}, "/trainings")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded", response.text
    assert "step 2/2" in response.json()["logs"]
    weights = response.json()["output"]["weights"]
    assert base64.b64decode(weights.split(",", 1)[1]) == b"suffix=v2\n"
    assert_rejected(client, {"steps": 0}, "steps", "/trainings")


def test_raising_fails_the_prediction_not_the_request(example: Any, serve: Serve) -> None:
    project, output = example("raising")
    assert schemas(output)["Output"] == {"title": "Output", "type": "integer"}
    client = serve(project)
    assert predict(client, {"x": 21}).json()["output"] == 42
    response = predict(client, {"x": -1})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "failed"
    assert "ValueError: x must be non-negative" in response.json()["error"]


def test_failing_setup_still_has_a_schema_but_never_gets_ready(example: Any, serve: Serve) -> None:
    project, output = example("failing-setup")
    assert schemas(output)["Input"]["required"] == ["prompt"]
    client = serve(project)
    health = client.get("/health-check").json()
    assert health["status"] == "SETUP_FAILED"
    assert "weights not found" in health["setup"]["logs"]
    assert predict(client, {"prompt": "x"}).status_code == 503


@pytest.mark.parametrize("name", ["noop", "slow"])
def test_other_examples_have_schemas(name: str, example: Any) -> None:
    _, output = example(name)
    assert schemas(output)["Output"] == {"title": "Output", "type": "string"}
    assert "required" not in schemas(output)["Input"]


def test_edge_cases_match_the_go_generator(tmp_path: Path) -> None:
    project = copy_project(CASES / "edge", tmp_path)
    result = run_script(project, "--predict", "predict.py:Predictor", "--train", "train.py:Trainer")
    assert result.returncode == 0, result.stderr
    assert "printed while being imported" in result.stderr  # and not in the JSON on stdout
    output = json.loads(result.stdout)
    assert output["openapi_schema"]["paths"]["/predictions"]["post"]["x-cog-streaming"] is True
    components = schemas(output)
    inputs = components["Input"]
    properties = inputs["properties"]
    assert inputs["required"] == ["seed", "raw_none", "key_required", "image", "either", "files"]
    assert "default" not in properties["seed"]  # int = Input(default=None): required, no default
    assert "nullable" not in properties["seed"]
    assert properties["maybe"]["nullable"] is True
    assert "default" not in properties["maybe"]  # Optional without default=: no default at all
    assert properties["maybe_none"]["default"] is None
    assert properties["raw_count"]["default"] == 3
    assert properties["api_key"]["default"] is None
    assert properties["api_key"]["nullable"] is True
    assert "nullable" not in properties["key_required"]
    assert properties["image"]["x-cog-accept"] == "image/*"
    assert properties["either"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert properties["either_or_none"]["anyOf"] == [
        {"type": "integer", "nullable": True},
        {"type": "string", "nullable": True},
    ]
    word = properties["word"]
    assert (word["pattern"], word["maxLength"], word["deprecated"]) == ("^[a-z]+$", 5, True)
    assert (properties["ratio"]["default"], properties["ratio"]["minimum"]) == (1, 0.5)
    assert json.dumps(properties["ratio"]["maximum"]) == "10"  # as Go writes a float64
    assert properties["files"]["items"] == {"type": "string", "format": "uri"}
    assert components["Output"]["required"] == ["text", "score"]
    assert components["Output"]["properties"]["note"]["nullable"] is True
    # Merging keeps the predictor's component when names clash, exactly like `cog build`.
    assert components["mode"]["enum"] == [1, 2, 4]
    assert components["TrainingInput"]["properties"]["mode"]["default"] == "fast"
    assert components["TrainingOutput"] == {"title": "Output", "type": "string"}


MODEL_CLASS = "from cog import BaseRunner, Input\n\n\nclass Model(BaseRunner):\n"  # lines 1-4

BAD_PREDICTORS = [
    pytest.param(
        "import cog\n\ndef run(x: int) -> int\n    return x\n",
        "predict.py:3: syntax error: expected ':'",
        id="syntax-error",
    ),
    pytest.param(
        "import cog\nimport torchvisionx\n",
        "predict.py:2: import failed: ModuleNotFoundError: No module named 'torchvisionx'",
        id="missing-module",
    ),
    pytest.param(
        "x = 1\nraise RuntimeError('no GPU here')\n",
        "predict.py:2: import failed: RuntimeError: no GPU here",
        id="raises-on-import",
    ),
    pytest.param(
        "from cog import BaseRunner\n\nclass Predictor(BaseRunner):\n    pass\n",
        "predict.py: no class or function named 'Model' (found: Predictor)",
        id="unknown-class",
    ),
    pytest.param(
        MODEL_CLASS + "    def run(self, x: set = Input()) -> str:\n        return ''\n",
        "predict.py:5: input 'x' of Model.run has an unsupported type annotation `set`",
        id="set-annotation",
    ),
    pytest.param(
        "class Box:\n    pass\n\n"
        + MODEL_CLASS
        + "    def run(self, box: Box) -> str:\n        return ''\n",
        "predict.py:8: input 'box' of Model.run has an unsupported type annotation `Box`",
        id="custom-class-annotation",
    ),
    pytest.param(
        MODEL_CLASS + "    def run(self, x: int):\n        return x\n",
        "predict.py:5: Model.run: run() must have a return type annotation",
        id="no-return-type",
    ),
]


@pytest.mark.parametrize(("source", "message"), BAD_PREDICTORS)
def test_bad_predictors_fail_with_one_clear_line(source: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "predict.py").write_text(source)
    result = run_script(tmp_path, "--predict", "predict.py:Model")
    assert result.returncode == 1
    assert result.stdout == ""
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("cog_schema: error: ")
    assert message in last_line


def test_missing_predict_file_is_named(tmp_path: Path) -> None:
    result = run_script(tmp_path, "--predict", "predict.py:Predictor")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "cog_schema: error: predict.py: file not found" in result.stderr


def test_missing_train_function_is_named(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("def fit() -> str:\n    return ''\n")
    result = run_script(tmp_path, "--train", "train.py:train")
    assert result.returncode == 1
    assert "train.py: no class or function named 'train' (found: fit)" in result.stderr
