"""One coglet process (Cog's HTTP server) per instance: its environment, start and stop.

coglet forks its Python worker with the ``python`` found on PATH, so the model environment's
``bin`` must come first there or the worker is the wrong interpreter and setup never ends.
Each coglet gets its own process group, so stopping it also stops the worker it spawned.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cogplane.common.embedded import die_with_parent

# What the runner's own environment must not hand to model code: its settings (secrets among
# them) and the runner's virtualenv.
_PRIVATE_PREFIXES = ("COGPLANE_", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "UV_")


@dataclass(frozen=True)
class Launch:
    """Everything needed to start coglet for one instance."""

    workdir: Path
    env_dir: Path
    predict: str
    slots: int
    port: int
    webhook_token: str
    cuda_visible_devices: str
    model_env: Sequence[str]
    log_path: Path
    upload_url: str | None = None

    @property
    def url(self) -> str:
        """Where the instance answers."""
        return f"http://127.0.0.1:{self.port}"


def model_environment(entries: Sequence[str]) -> dict[str, str]:
    """cog.yaml's ``environment:`` list (``KEY=VALUE``) as a mapping; other entries are skipped."""
    pairs = (entry.partition("=") for entry in entries)
    return {key.strip(): value for key, sep, value in pairs if sep and key.strip()}


def environment(launch: Launch, base: Mapping[str, str]) -> dict[str, str]:
    """The process environment of coglet: ours (minus private settings), the model's, Cog's."""
    env = {k: v for k, v in base.items() if not k.startswith(_PRIVATE_PREFIXES)}
    env |= model_environment(launch.model_env)
    env |= {
        "PATH": f"{launch.env_dir / 'bin'}{os.pathsep}{base.get('PATH', os.defpath)}",
        "PORT": str(launch.port),
        "COG_PREDICT_TYPE_STUB": launch.predict,
        "WEBHOOK_AUTH_TOKEN": launch.webhook_token,
        "CUDA_VISIBLE_DEVICES": launch.cuda_visible_devices,
    }
    if launch.slots > 1:
        env["COG_MAX_CONCURRENCY"] = str(launch.slots)
    return env


class CogletProcess:
    """A started coglet; ``exited`` completes with its exit status."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str) -> None:
        self.proc = proc
        self.url = url
        self.exited: asyncio.Task[int] = asyncio.create_task(proc.wait())

    @classmethod
    async def spawn(cls, launch: Launch) -> CogletProcess:
        """Start coglet in ``launch.workdir``, its output appended to the instance's log."""
        python = launch.env_dir / "bin" / "python"
        uploads = ("--upload-url", launch.upload_url) if launch.upload_url else ()
        with launch.log_path.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                str(python),
                *("-m", "cog.server.http", "--host", "127.0.0.1", *uploads),
                cwd=launch.workdir,
                env=environment(launch, os.environ),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # asyncio passes it to Popen: one prctl call
            )
        return cls(proc, launch.url)

    @property
    def pid(self) -> int:
        """The coglet server's process id (also its process group id)."""
        return self.proc.pid

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to coglet and its worker."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def wait(self, timeout: float) -> bool:
        """Whether coglet exits within ``timeout`` seconds."""
        done, _ = await asyncio.wait({self.exited}, timeout=timeout)
        return bool(done)

    async def terminate(self, timeout: float) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; the worker is killed with it either way."""
        if not self.exited.done():
            self.signal_group(signal.SIGTERM)
            if not await self.wait(timeout):
                self.signal_group(signal.SIGKILL)
                await self.exited
        self.signal_group(signal.SIGKILL)  # a worker that outlived its server

    def describe_exit(self) -> str:
        """How the process ended, in words."""
        code = self.proc.returncode
        if code is None:
            return "is still running"
        if code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"
