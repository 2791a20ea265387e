"""``cog.yaml``: parsed, checked, and reduced to the recipe this runner can build."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cogplane.runner.build.errors import BuildError

SUPPORTED_PYTHON = ("3.10", "3.11", "3.12", "3.13")
DEFAULT_PYTHON = "3.13"
_REFERENCE = re.compile(r"^[\w./-]+\.py:[A-Za-z_]\w*$")


class CogYamlError(BuildError):
    """cog.yaml is missing, malformed, or asks for something this runner cannot do."""

    title = "Invalid cog.yaml"


class RunCommand(BaseModel):
    model_config = ConfigDict(extra="ignore")
    command: str
    mounts: list[dict[str, Any]] = Field(default_factory=list)


class BuildSection(BaseModel):
    model_config = ConfigDict(extra="ignore")

    python_version: str = DEFAULT_PYTHON
    python_packages: list[str] = Field(default_factory=list)
    python_requirements: str | None = None
    system_packages: list[str] = Field(default_factory=list)
    gpu: bool = False
    run: list[str | RunCommand] = Field(default_factory=list)
    sdk_version: str | None = None

    @field_validator("python_version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # YAML reads 3.10 as the float 3.1; people write it unquoted all the time.
        if isinstance(value, float):
            text = repr(value)
            return "3.10" if text == "3.1" else text
        return value


class Concurrency(BaseModel):
    model_config = ConfigDict(extra="ignore")
    max: int = Field(ge=1, le=1000)


class CogYaml(BaseModel):
    """The parts of cog.yaml that shape a build and a run."""

    model_config = ConfigDict(extra="ignore")

    build: BuildSection = Field(default_factory=BuildSection)
    predict: str | None = None
    run: str | None = None
    train: str | None = None
    concurrency: Concurrency | None = None
    environment: list[str] = Field(default_factory=list)

    @property
    def predictor(self) -> str:
        """The predictor reference (``run:``, or its older name ``predict:``)."""
        reference = self.run or self.predict
        assert reference is not None
        return reference

    def run_commands(self) -> list[str]:
        """The build's ``run`` commands as shell lines."""
        return [c if isinstance(c, str) else c.command for c in self.build.run]


def _problem(message: str) -> CogYamlError:
    return CogYamlError(f"cog.yaml: {message}")


def load(root: Path) -> CogYaml:
    """Read and check ``root/cog.yaml``; raise CogYamlError with the reason."""
    path = root / "cog.yaml"
    if not path.is_file():
        raise _problem("not found at the root of the project")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _problem(f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise _problem("must be a mapping of keys such as build: and predict:")
    try:
        config = CogYaml.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _problem(f"{where}: {first['msg']}") from exc
    check(config, root)
    return config


def check(config: CogYaml, root: Path) -> None:
    """What a native (Docker-less) runner refuses, each with the reason."""
    if config.run is None and config.predict is None:
        raise _problem('no predictor: add `run: "predict.py:Predictor"` (or `predict:`)')
    for key, reference in (("run", config.predictor), ("train", config.train)):
        if reference is None:
            continue
        if not _REFERENCE.match(reference):
            raise _problem(f"{key}: {reference!r} must look like 'predict.py:Predictor'")
        if not (root / reference.split(":", 1)[0]).is_file():
            raise _problem(f"{key}: {reference.split(':', 1)[0]} does not exist in the project")
    if config.build.python_version not in SUPPORTED_PYTHON:
        raise _problem(
            f"build.python_version {config.build.python_version!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_PYTHON)})"
        )
    if config.build.python_packages and config.build.python_requirements:
        raise _problem("use either build.python_packages or build.python_requirements, not both")
    requirements = config.build.python_requirements
    if requirements is not None and not (root / requirements).is_file():
        raise _problem(f"build.python_requirements: {requirements} does not exist in the project")
    if config.build.system_packages:
        raise _problem(
            "build.system_packages cannot be installed per model on a shared host "
            f"({', '.join(config.build.system_packages)}); in local mode install them on the "
            "runner's machine and remove them from cog.yaml, or deploy on a cluster, where they "
            "go into the model's image"
        )
