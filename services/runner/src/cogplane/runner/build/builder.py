"""One build: fetch the pushed archive, unpack it safely, make the environment, read the schema."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cogplane.common import archive
from cogplane.common.bus import Bus
from cogplane.common.contracts.base import SOURCES_BUCKET
from cogplane.common.contracts.models import BuildFinished, BuildRequested, BuiltVersion
from cogplane.common.errors import CogplaneError
from cogplane.runner.build import cogyaml
from cogplane.runner.build.environments import EnvironmentCache, Log, Recipe
from cogplane.runner.build.errors import BuildError
from cogplane.runner.build.logs import BuildLog

SCHEMA_SCRIPT = Path(__file__).with_name("cog_schema.py")
SCHEMA_TIMEOUT = 300.0
_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Prepared:
    """A version's project and environment, ready to run on this node."""

    root: Path
    env: Path
    config: cogyaml.CogYaml


@dataclass(frozen=True)
class Schema:
    openapi_schema: dict[str, Any]
    cog_version: str
    concurrency_max: int | None


def version_id(owner: str, name: str, source_digest: str, env_key: str) -> str:
    """A version's id: the same model, content and recipe always give the same id."""
    return hashlib.sha256(f"{owner}/{name}\n{source_digest}\n{env_key}".encode()).hexdigest()


class Builder:
    """Builds versions on this node; sources and environments are cached under ``data_dir``."""

    def __init__(self, bus: Bus, data_dir: Path, default_cog_version: str) -> None:
        self.bus = bus
        self.data_dir = data_dir
        self.sources = data_dir / "sources"
        self.environments = EnvironmentCache(data_dir / "envs")
        self.default_cog_version = default_cog_version
        self._unpacking: dict[str, asyncio.Lock] = {}

    def source_dir(self, digest: str) -> Path:
        """Where the unpacked project with this tree digest lives."""
        return self.sources / digest

    async def prepare(self, source_object: str, source_digest: str, log: Log) -> Prepared:
        """A built version's project and environment, fetched or rebuilt only when missing.

        Both caches are shared with builds, so on the node that built the version this is
        instant; another node fetches the pushed archive and rebuilds the same environment.
        """
        if not _DIGEST.fullmatch(source_digest):
            raise BuildError(f"{source_digest!r} is not a source digest")
        root = await self._source(source_object, source_digest)
        config = cogyaml.load(root)
        env, _ = await self.environments.ensure(
            Recipe.of(config, root, self.default_cog_version), log
        )
        return Prepared(root, env, config)

    async def _source(self, source_object: str, source_digest: str) -> Path:
        lock = self._unpacking.setdefault(source_digest, asyncio.Lock())
        async with lock:
            if self.source_dir(source_digest).is_dir():
                return self.source_dir(source_digest)
            root, digest = await self._unpack(source_object)
        if digest != source_digest:
            raise BuildError(f"The source {source_object} has digest {digest}, not {source_digest}")
        return root

    async def build(self, request: BuildRequested) -> BuildFinished:
        """Run the build; every failure becomes a finished event with the reason."""
        started = time.monotonic()
        version: BuiltVersion | None = None
        error: str | None = None
        reused = False
        async with BuildLog(self.bus, request.build_id) as log:
            try:
                version, reused = await self._build(request, log)
            except CogplaneError as exc:
                error = exc.detail
                await log.write(f"\nBuild failed: {error}\n")
            else:
                await log.write(f"\nBuilt version {version.id}\n")
        return BuildFinished(
            build_id=request.build_id,
            version=version,
            error=error,
            env_reused=reused,
            duration_seconds=round(time.monotonic() - started, 3),
            log_lines=log.chunks,
        )

    async def _build(self, request: BuildRequested, log: BuildLog) -> tuple[BuiltVersion, bool]:
        await log.write(f"Building {request.owner}/{request.name} from {request.source_object}\n")
        root, digest = await self._unpack(request.source_object)
        config = cogyaml.load(root)
        recipe = Recipe.of(config, root, self.default_cog_version)
        env, reused = await self.environments.ensure(recipe, log.write)
        await log.write("Reading the predictor's inputs and outputs\n")
        schema = await self._schema(env, root, config)
        concurrency = config.concurrency.max if config.concurrency else schema.concurrency_max
        version = BuiltVersion(
            id=version_id(request.owner, request.name, digest, recipe.key),
            cog_version=schema.cog_version,
            openapi_schema=schema.openapi_schema,
            python_version=recipe.python_version,
            predict=config.predictor,
            train=config.train,
            concurrency_max=concurrency,
            gpu=config.build.gpu,
            env_key=recipe.key,
            source_digest=digest,
        )
        return version, reused

    async def _unpack(self, source_object: str) -> tuple[Path, str]:
        """The project, unpacked once per distinct content."""
        scratch = self.data_dir / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            upload = Path(tmp) / "upload.tar.gz"
            with upload.open("wb") as out:
                await self.bus.get_object(SOURCES_BUCKET, source_object, out)
            unpacked = Path(tmp) / "src"
            with upload.open("rb") as stream:
                await asyncio.to_thread(archive.unpack, stream, unpacked)
            digest = await asyncio.to_thread(archive.tree_digest, unpacked)
            final = self.source_dir(digest)
            if not final.exists():
                self.sources.mkdir(parents=True, exist_ok=True)
                shutil.move(unpacked, final)
        return final, digest

    async def _schema(self, env: Path, root: Path, config: cogyaml.CogYaml) -> Schema:
        """Run the schema script with the model's own environment, in the project root."""
        argv = [str(env / "bin" / "python"), str(SCHEMA_SCRIPT), "--predict", config.predictor]
        if config.train:
            argv += ["--train", config.train]
        environ = {
            k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))
        }
        environ["PATH"] = f"{env / 'bin'}{os.pathsep}{environ.get('PATH', '')}"
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=root,
            env=environ,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), SCHEMA_TIMEOUT)
        except TimeoutError as exc:
            proc.kill()
            raise BuildError(f"Importing the predictor took over {SCHEMA_TIMEOUT:.0f}s") from exc
        if proc.returncode != 0:
            raise BuildError(err.decode(errors="replace").strip() or "Reading the predictor failed")
        try:
            result = json.loads(out)
            return Schema(
                result["openapi_schema"], result["cog_version"], result["concurrency_max"]
            )
        except (ValueError, KeyError) as exc:
            raise BuildError(
                f"The schema reader printed something unexpected: {out[:200]!r}"
            ) from exc
