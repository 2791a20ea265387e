"""Push real Cog projects through the platform and run the stored schemas on the real Cog server."""

from __future__ import annotations

import asyncio
import base64
import io
import random
import tarfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import replicate
from typer.testing import CliRunner

from cogplane.cli.devstack import DevStack
from cogplane.cli.main import app
from cogplane.common.bus import Bus
from cogplane.common.contracts.models import GET_VERSION, VersionRef, Viewer
from cogplane.common.testing.coglet import coglet

from .conftest import PUSH_MAX_BYTES

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).parents[2] / "examples"
DATA = "data:text/plain;base64," + base64.b64encode(b"hello files").decode()

# example -> (a valid input and a check of its output, an invalid input coglet must refuse)
CASES: dict[str, tuple[dict[str, Any], Any, dict[str, Any]]] = {
    "hello": ({"name": "ada"}, lambda out: "ada" in out, {"name": 5}),
    "stream": (
        {"prompt": "a b c", "delay": 0},
        lambda out: "".join(out).split() == ["a", "b", "c"],
        {},
    ),
    "files": ({"file": DATA}, lambda out: out.startswith("data:"), {"file": 3}),
    "concurrent": ({"seconds": 0.01}, lambda out: isinstance(out, str), {"seconds": 100}),
    "form": (
        {"text": "hi", "style": "shout"},
        lambda out: out.startswith("HI"),
        {"text": "hi", "style": "loud"},
    ),
    "train": ({"prompt": "x"}, lambda out: isinstance(out, str), {}),
}


def cli(stack: DevStack, *args: str) -> tuple[int, str]:
    assert stack.token is not None
    env = {"COGPLANE_URL": stack.gateway_url, "COGPLANE_TOKEN": stack.token}
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def new_model(stack: DevStack, prefix: str, visibility: str = "private") -> str:
    name = f"dev/{prefix}-{uuid.uuid4().hex[:8]}"
    code, output = cli(stack, "models", "create", name, "--visibility", visibility)
    assert code == 0, output
    return name


def client(stack: DevStack) -> replicate.Client:
    return replicate.Client(api_token=stack.token, base_url=stack.gateway_url)


def version_info(stack: DevStack, model: str, version: str) -> dict[str, Any]:
    """The registry's full record of a version (more than Replicate's version object shows)."""
    return asyncio.run(_version_info(stack, model, version))


async def _version_info(stack: DevStack, model: str, version: str) -> dict[str, Any]:
    bus = Bus(stack.nats.url, "e2e-push", timedelta(seconds=10))
    await bus.connect()
    try:
        owner, name = model.split("/")
        viewer = Viewer(account_id="e2e", username="dev")
        info = await bus.request(
            GET_VERSION, VersionRef(viewer=viewer, owner=owner, name=name, version_id=version)
        )
        return info.model_dump()
    finally:
        await bus.close()


@pytest.mark.parametrize("example", sorted(CASES))
def test_pushed_schema_drives_the_real_cog_server(
    stack: DevStack, example: str, tmp_path: Path
) -> None:
    model = new_model(stack, example)
    code, output = cli(stack, "push", model, "--path", str(EXAMPLES / example))
    assert code == 0, output
    version_id = output.strip().splitlines()[-1]
    assert len(version_id) == 64

    version = client(stack).models.get(model).versions.get(version_id)
    schema = version.openapi_schema
    assert version.cog_version == "0.23.1"
    assert set(schema["components"]["schemas"]) >= {"Input", "Output"}
    info = version_info(stack, model, version_id)

    valid, check, invalid = CASES[example]
    with coglet(
        EXAMPLES / example, schema, tmp_path / "model", concurrency=info["concurrency_max"]
    ) as url:
        ok = httpx.post(f"{url}/predictions", json={"input": valid}, timeout=30)
        assert ok.status_code == 200, ok.text
        assert ok.json()["status"] == "succeeded"
        assert check(ok.json()["output"]), ok.json()
        bad = httpx.post(f"{url}/predictions", json={"input": invalid}, timeout=30)
        assert bad.status_code == 422, bad.text

    if example == "concurrent":
        assert info["concurrency_max"] == 4
    if example == "stream":
        assert schema["paths"]["/predictions"]["post"].get("x-cog-streaming") is True
        assert schema["components"]["schemas"]["Output"]["x-cog-array-type"] == "iterator"
    if example == "train":
        assert info["train"] == "train.py:train"
        assert "TrainingInput" in schema["components"]["schemas"]


def test_same_content_twice_is_the_same_version_and_reuses_the_environment(
    stack: DevStack, tmp_path: Path
) -> None:
    model = new_model(stack, "again")
    project = tmp_path / "hello"
    project.mkdir()
    for item in (EXAMPLES / "hello").iterdir():
        (project / item.name).write_bytes(item.read_bytes())
    first = cli(stack, "push", model, "--path", str(project))
    second = cli(stack, "push", model, "--path", str(project))
    assert first[0] == second[0] == 0
    assert first[1].strip().splitlines()[-1] == second[1].strip().splitlines()[-1]
    assert "Reusing the environment" in second[1]

    (project / "predict.py").write_text(
        (project / "predict.py").read_text() + "\n# a code change\n"
    )
    third = cli(stack, "push", model, "--path", str(project))
    assert third[0] == 0
    assert third[1].strip().splitlines()[-1] != first[1].strip().splitlines()[-1]
    assert "Reusing the environment" in third[1]
    versions = client(stack).models.get(model).versions.list()
    assert [v.id for v in versions.results] == [
        third[1].strip().splitlines()[-1],
        first[1].strip().splitlines()[-1],
    ]


def test_official_client_models_and_hardware(stack: DevStack) -> None:
    rc = client(stack)
    name = f"client-{uuid.uuid4().hex[:8]}"
    created = rc.models.create(
        owner="dev",
        name=name,
        visibility="public",
        hardware="cpu",
        description="made by the client",
    )
    assert (created.owner, created.name, created.visibility) == ("dev", name, "public")
    got = rc.models.get(f"dev/{name}")
    assert got.description == "made by the client"
    assert got.latest_version is None
    listed = [m.name for m in rc.models.list().results]
    assert name in listed
    assert rc.models.get(f"dev/{name}").versions.list().results == []
    skus = {h.sku for h in rc.hardware.list()}
    assert {
        "cpu",
        "gpu-t4",
        "gpu-a40-small",
        "gpu-a40-large",
        "gpu-l40s",
        "gpu-a100-large",
        "gpu-h100",
    } <= skus


# -- bad input ---------------------------------------------------------------------------------


def project(
    tmp_path: Path, cog_yaml: str, predict: str | None, extra: dict[str, str] | None = None
) -> Path:
    root = tmp_path / f"p-{uuid.uuid4().hex[:6]}"
    root.mkdir()
    (root / "cog.yaml").write_text(cog_yaml)
    if predict is not None:
        (root / "predict.py").write_text(predict)
    for name, text in (extra or {}).items():
        (root / name).write_text(text)
    return root


GOOD_YAML = 'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\n'


def yaml_with(build_lines: str) -> str:
    """cog.yaml with extra lines in its build section."""
    return f'build:\n  python_version: "3.11"\n{build_lines}predict: "predict.py:Predictor"\n'


PREDICTOR = (
    "from cog import BasePredictor\n\n"
    "class Predictor(BasePredictor):\n"
    "    def predict(self, x: {annotation}) -> str:\n"
    "        return str(x)\n"
)
GOOD_PREDICT = PREDICTOR.format(annotation="str")

BAD_PROJECTS: dict[str, tuple[str, str | None, dict[str, str], str]] = {
    "malformed yaml": ("build: [python_version: 3.11\n", GOOD_PREDICT, {}, "not valid YAML"),
    "no predictor": ('build:\n  python_version: "3.11"\n', GOOD_PREDICT, {}, "no predictor"),
    "missing predict file": (
        'build:\n  python_version: "3.11"\npredict: "nope.py:Predictor"\n',
        None,
        {},
        "nope.py does not exist",
    ),
    "bad reference": (
        'build:\n  python_version: "3.11"\npredict: "predict.py"\n',
        GOOD_PREDICT,
        {},
        "must look like",
    ),
    "wrong class": (
        'build:\n  python_version: "3.11"\npredict: "predict.py:Missing"\n',
        GOOD_PREDICT,
        {},
        "Missing",
    ),
    "syntax error": (GOOD_YAML, "def broken(:\n", {}, "predict.py:1: syntax error"),
    "import error": (
        GOOD_YAML,
        "import cogplane_no_such_module\n" + GOOD_PREDICT,
        {},
        "cogplane_no_such_module",
    ),
    "bad annotation": (
        GOOD_YAML,
        PREDICTOR.format(annotation="set"),
        {},
        "x",
    ),
    "unsupported python": (
        'build:\n  python_version: "3.9"\npredict: "predict.py:Predictor"\n',
        GOOD_PREDICT,
        {},
        "3.9",
    ),
    "requirements fail": (
        yaml_with('  python_packages: ["cogplane-no-such-package==9.9.9"]\n'),
        GOOD_PREDICT,
        {},
        "cogplane-no-such-package",
    ),
    "system packages": (
        yaml_with('  system_packages: ["ffmpeg"]\n'),
        GOOD_PREDICT,
        {},
        "system_packages",
    ),
    "run command fails": (
        'build:\n  python_version: "3.11"\n  run: ["exit 3"]\npredict: "predict.py:Predictor"\n',
        GOOD_PREDICT,
        {},
        "exit 3",
    ),
}


def failed_build(stack: DevStack, model: str, body: bytes) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {stack.token}", "Content-Type": "application/gzip"}
    owner, name = model.split("/")
    build = httpx.post(
        f"{stack.gateway_url}/v1/models/{owner}/{name}/builds", content=body, headers=auth
    )
    assert build.status_code == 202, build.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = httpx.get(build.json()["urls"]["get"], headers=auth).json()
        if state["status"] != "building":
            return state
        time.sleep(0.2)
    raise AssertionError("build did not finish")


def assert_no_version(stack: DevStack, model: str) -> None:
    got = client(stack).models.get(model)
    assert got.latest_version is None
    assert got.versions.list().results == []


@pytest.mark.parametrize("case", sorted(BAD_PROJECTS))
def test_bad_projects_fail_clearly_and_leave_no_version(
    stack: DevStack, tmp_path: Path, case: str
) -> None:
    cog_yaml, predict, extra, expected = BAD_PROJECTS[case]
    root = project(tmp_path, cog_yaml, predict, extra)
    model = new_model(stack, "bad")
    code, output = cli(stack, "push", model, "--path", str(root))
    assert code == 1, output
    assert "Push failed" in output
    assert expected in output, output
    assert_no_version(stack, model)


def raw_archive(add: Any) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in (("cog.yaml", GOOD_YAML), ("predict.py", GOOD_PREDICT)):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
        add(tar)
    return buffer.getvalue()


def _file(name: str) -> Any:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))

    return add


def _special(name: str, kind: bytes, target: str = "") -> Any:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = target
        tar.addfile(info)

    return add


MALICIOUS = {
    "absolute path": _file("/etc/cogplane-evil"),
    "dot dot": _file("../evil"),
    "symlink out": _special("link", tarfile.SYMTYPE, "/etc/passwd"),
    "hard link": _special("hard", tarfile.LNKTYPE, "cog.yaml"),
    "device file": _special("dev", tarfile.CHRTYPE),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archives_fail_the_build_and_leave_no_version(stack: DevStack, case: str) -> None:
    model = new_model(stack, "evil")
    state = failed_build(stack, model, raw_archive(MALICIOUS[case]))
    assert state["status"] == "failed"
    assert state["version"] is None
    assert state["error"]
    assert_no_version(stack, model)


def test_corrupt_upload_fails_the_build(stack: DevStack) -> None:
    model = new_model(stack, "corrupt")
    state = failed_build(stack, model, b"\x1f\x8b not really gzip")
    assert state["status"] == "failed"
    assert_no_version(stack, model)


def test_an_upload_over_the_limit_is_refused_and_nothing_is_built(
    stack: DevStack, tmp_path: Path
) -> None:
    root = project(tmp_path, GOOD_YAML, GOOD_PREDICT)
    # incompressible, so the archive itself is over the limit
    (root / "weights.bin").write_bytes(random.Random(0).randbytes(PUSH_MAX_BYTES + 1024))
    model = new_model(stack, "big")
    code, output = cli(stack, "push", model, "--path", str(root))
    assert code == 1
    assert "Payload too large" in output
    assert_no_version(stack, model)
