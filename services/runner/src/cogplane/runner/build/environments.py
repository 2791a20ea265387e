"""Python environments for versions, cached by the hash of what goes into them.

An environment depends only on (Python version, Cog version, packages or requirements, ``run``
commands): two versions that share these share one virtualenv, so a push that changed only code
builds in seconds. An environment counts only once its ``.complete`` marker is written, last: a
failed build removes what it made, and one interrupted by a crash is rebuilt from scratch.
(Virtualenvs are not relocatable, so they are built where they stay.)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cogplane.runner.build.cogyaml import CogYaml
from cogplane.runner.build.errors import BuildError

Log = Callable[[str], Awaitable[None]]
COMPLETE = ".complete"


@dataclass(frozen=True)
class Recipe:
    """Everything an environment is made from."""

    python_version: str
    cog_version: str
    packages: tuple[str, ...]
    requirements: str | None
    run: tuple[str, ...]

    @classmethod
    def of(cls, config: CogYaml, root: Path, default_cog: str) -> Recipe:
        """The recipe of a project (requirements by content, not by file name)."""
        req = config.build.python_requirements
        return cls(
            python_version=config.build.python_version,
            cog_version=config.build.sdk_version or default_cog,
            packages=tuple(config.build.python_packages),
            requirements=(root / req).read_text(encoding="utf-8") if req else None,
            run=tuple(config.run_commands()),
        )

    @property
    def key(self) -> str:
        """The cache key: sha256 of the recipe."""
        text = json.dumps(
            [self.python_version, self.cog_version, self.packages, self.requirements, self.run]
        )
        return hashlib.sha256(text.encode()).hexdigest()


def uv_binary() -> str:
    """The uv executable shipped with the runner."""
    from uv import find_uv_bin

    return str(find_uv_bin())


async def run_logged(argv: Sequence[str], log: Log, *, cwd: Path, env: dict[str, str]) -> int:
    """Run a command, sending its output to ``log`` line by line; its exit status."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert proc.stdout is not None
    async for line in proc.stdout:
        await log(line.decode(errors="replace"))
    return await proc.wait()


class EnvironmentCache:
    """Virtualenvs under ``root/<key>``, built once each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, asyncio.Lock] = {}

    def path(self, recipe: Recipe) -> Path:
        """Where the environment of ``recipe`` lives."""
        return self.root / recipe.key

    async def ensure(self, recipe: Recipe, log: Log) -> tuple[Path, bool]:
        """The environment of ``recipe`` and whether it was reused (built now if absent)."""
        lock = self._locks.setdefault(recipe.key, asyncio.Lock())
        async with lock:
            target = self.path(recipe)
            marker = target / COMPLETE
            if marker.exists():
                await log(f"Reusing the environment {recipe.key[:12]} (dependencies unchanged)\n")
                return target, True
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(target, ignore_errors=True)  # what a crashed build left
            try:
                await self._build(recipe, target, log)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
            marker.write_text(json.dumps(recipe.__dict__, default=list))
            return target, False

    async def _build(self, recipe: Recipe, target: Path, log: Log) -> None:
        env = dict(os.environ) | {"UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": str(target)}
        uv = uv_binary()
        await log(f"Creating a Python {recipe.python_version} environment\n")
        lines: list[str] = []

        async def keep(line: str) -> None:
            lines.append(line)
            await log(line)

        status = await run_logged(
            [uv, "venv", "--python", recipe.python_version, "--seed", str(target)],
            keep,
            cwd=self.root,
            env=env,
        )
        if status != 0:
            raise BuildError(
                f"Python {recipe.python_version} is not available on this runner:\n"
                + "".join(lines[-5:])
            )
        requirements = target / "requirements.txt"
        requirements.write_text(
            "\n".join([f"cog=={recipe.cog_version}", *recipe.packages, recipe.requirements or ""])
        )
        await log("Installing Python packages\n")
        lines.clear()
        install = [
            uv,
            "pip",
            "install",
            "--python",
            str(target / "bin" / "python"),
            "-r",
            str(requirements),
        ]
        if await run_logged(install, keep, cwd=self.root, env=env) != 0:
            raise BuildError("Installing the Python packages failed:\n" + "".join(lines[-20:]))
        path = f"{target / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        for command in recipe.run:
            await log(f"Running {command}\n")
            lines.clear()
            shell = ["/bin/sh", "-c", command]
            if await run_logged(shell, keep, cwd=target, env=env | {"PATH": path}) != 0:
                raise BuildError(f"The run command `{command}` failed:\n" + "".join(lines[-20:]))
