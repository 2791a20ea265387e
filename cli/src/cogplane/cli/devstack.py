"""The whole platform on one machine: embedded PostgreSQL and NATS, six services, a dev account.

Used by ``cogplane dev`` (and so ``make dev``) and by the end-to-end tests. Every process it
starts is its child; ``stop`` (or Ctrl-C, or SIGTERM) ends them in reverse order, services first
so that they drain while NATS and PostgreSQL are still up.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx

from cogplane.common.bus import Bus
from cogplane.common.contracts.accounts import DEV_BOOTSTRAP, DevAccount, DevBootstrap
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres, die_with_parent, port_open


@dataclass(frozen=True)
class ServiceDef:
    name: str
    module: str
    env_prefix: str


SERVICES = (
    ServiceDef("registry", "cogplane.registry", "COGPLANE_REGISTRY_"),
    ServiceDef("scheduler", "cogplane.scheduler", "COGPLANE_SCHEDULER_"),
    ServiceDef("autoscaler", "cogplane.autoscaler", "COGPLANE_AUTOSCALER_"),
    ServiceDef("billing", "cogplane.billing", "COGPLANE_BILLING_"),
    ServiceDef("runner", "cogplane.runner", "COGPLANE_RUNNER_"),
    ServiceDef("api-gateway", "cogplane.gateway", "COGPLANE_GATEWAY_"),
)

DEFAULT_PORTS = {
    "api-gateway": 8700,
    "registry": 8701,
    "scheduler": 8702,
    "autoscaler": 8703,
    "billing": 8704,
    "runner": 8705,
    "postgres": 8732,
    "nats": 8742,
}
DEV_USER = "dev"
DEV_ORGANIZATION = "dev-org"


class StackError(RuntimeError):
    """The stack could not start; the message says why and where the logs are."""


def ports_from_env(env: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Ports by component: ``COGPLANE_<SERVICE>_PORT``, ``COGPLANE_DEV_<POSTGRES|NATS>_PORT``."""
    ports = dict(DEFAULT_PORTS)
    for svc in SERVICES:
        if value := env.get(f"{svc.env_prefix}PORT"):
            ports[svc.name] = int(value)
    for name in ("postgres", "nats"):
        if value := env.get(f"COGPLANE_DEV_{name.upper()}_PORT"):
            ports[name] = int(value)
    return ports


@dataclass
class DevStack:
    """All of Cogplane under ``root`` (normally ``.cogplane/`` in the repository)."""

    root: Path
    ports: dict[str, int] = field(default_factory=ports_from_env)
    extra_env: dict[str, str] = field(default_factory=dict)
    durable: bool = True
    postgres: EmbeddedPostgres = field(init=False)
    nats: EmbeddedNats = field(init=False)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)
    token: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.postgres = EmbeddedPostgres(
            self.root / "postgres", self.ports["postgres"], durable=self.durable
        )
        self.nats = EmbeddedNats(self.root / "nats", self.ports["nats"])

    # -- addresses ------------------------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api-gateway']}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def env_file(self) -> Path:
        return self.root / "dev.env"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def service_env(self) -> dict[str, str]:
        """The environment every service process gets."""
        env = dict(os.environ)
        env.update(
            {
                "COGPLANE_DATABASE_URL": self.postgres.url,
                "COGPLANE_NATS_URL": self.nats.url,
                "COGPLANE_GATEWAY_PUBLIC_URL": self.gateway_url,
                "COGPLANE_SCHEDULER_PUBLIC_URL": self.gateway_url,
                "COGPLANE_MIGRATE_ON_START": "true",
                "COGPLANE_REGISTRY_ALLOW_DEV_BOOTSTRAP": "true",
                "COGPLANE_GATEWAY_DEV_SIGN_IN": "true",
                "COGPLANE_RUNNER_DATA_DIR": str(self.root / "runner"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        for svc in SERVICES:
            env[f"{svc.env_prefix}PORT"] = str(self.ports[svc.name])
        env.update(self.extra_env)
        return env

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> None:
        """Bring everything up; raise StackError (after stopping what started) on failure."""
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self._check_ports_free()
        try:
            self.postgres.start()
            self.nats.start()
            for svc in SERVICES:
                self.start_service(svc.name)
            self.wait_ready(timeout)
            self.ensure_dev_account()
        except BaseException:
            self.stop()
            raise

    def _check_ports_free(self) -> None:
        busy = [f"{name} ({port})" for name, port in self.ports.items() if port_open(port)]
        if busy:
            raise StackError(
                "ports already in use: "
                + ", ".join(busy)
                + ". Is another `make dev` running? Stop it with `make stop`, or choose other "
                "ports "
                "(COGPLANE_GATEWAY_PORT, COGPLANE_DEV_POSTGRES_PORT, COGPLANE_DEV_NATS_PORT, ...)."
            )

    def start_service(self, name: str) -> None:
        """Start (or restart) one service process."""
        svc = next(s for s in SERVICES if s.name == name)
        self.start_process(name, svc.module)

    def start_process(self, name: str, module: str, env: Mapping[str, str] | None = None) -> None:
        """Start a process of the platform named ``name`` (also a second runner or replica).

        Args:
            name: Its name here (its log is ``logs/{name}.log``; ``stop_service(name)`` stops it).
            module: The service's module (``cogplane.runner``...).
            env: Settings on top of the stack's own.
        """
        with self.log(name).open("ab") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", module],
                env={**self.service_env(), **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - one prctl call
            )

    def stop_service(self, name: str, timeout: float = 30.0) -> int | None:
        """SIGTERM one service and wait for it to drain; returns its exit code."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def wait_ready(self, timeout: float) -> None:
        """Wait until every service's /readyz answers 200."""
        deadline = time.monotonic() + timeout
        pending = {svc.name for svc in SERVICES}
        last: dict[str, str] = {}
        with httpx.Client(timeout=2.0) as client:
            while pending and time.monotonic() < deadline:
                for name in sorted(pending):
                    proc = self.procs[name]
                    if proc.poll() is not None:
                        raise StackError(
                            f"{name} exited with {proc.returncode}; see {self.log(name)}"
                        )
                    try:
                        response = client.get(f"{self.url(name)}/readyz")
                    except httpx.HTTPError as exc:
                        last[name] = str(exc)
                        continue
                    if response.status_code == 200:
                        pending.discard(name)
                    else:
                        last[name] = response.text
                time.sleep(0.1)
        if pending:
            detail = "; ".join(f"{n}: {last.get(n, 'no answer')}" for n in sorted(pending))
            raise StackError(f"not ready after {timeout}s: {detail} (logs in {self.root / 'logs'})")

    def ensure_dev_account(self) -> None:
        """Reuse the token in dev.env if it still works, else create the dev account and a token."""
        existing = read_env_file(self.env_file).get("COGPLANE_TOKEN")
        if existing and self._token_works(existing):
            self.token = existing
        else:
            self.token = asyncio.run(self._bootstrap()).token
        self.write_env_file()

    async def _bootstrap(self) -> DevAccount:
        bus = Bus(self.nats.url, "cogplane-dev", timedelta(seconds=30))
        await bus.connect()
        try:
            request = DevBootstrap(username=DEV_USER, organization=DEV_ORGANIZATION)
            return await bus.request(DEV_BOOTSTRAP, request)
        finally:
            await bus.close()

    def _token_works(self, token: str) -> bool:
        response = httpx.get(
            f"{self.gateway_url}/v1/account",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        return response.status_code == 200

    def write_env_file(self) -> None:
        """Write dev.env so that `source .cogplane/dev.env` points the official clients here."""
        assert self.token is not None
        lines = {
            "COGPLANE_URL": self.gateway_url,
            "COGPLANE_TOKEN": self.token,
            "REPLICATE_BASE_URL": self.gateway_url,
            "REPLICATE_API_TOKEN": self.token,
        }
        self.env_file.write_text("".join(f"export {k}={v}\n" for k, v in lines.items()))
        self.env_file.chmod(0o600)

    def stop(self) -> None:
        """Stop services (newest first: the gateway stops taking work first), NATS, PostgreSQL."""
        for name in reversed(list(self.procs)):
            self.stop_service(name)
        self.nats.stop()
        self.postgres.stop()

    def summary(self) -> str:
        """What `make dev` prints."""
        lines = [
            "",
            "Cogplane is running.",
            f"  gateway      {self.gateway_url}",
            f"  web app      {self.gateway_url}/  (one-click development sign-in)",
            f"  token        {self.token}",
            f"  environment  source {self.env_file}",
            "",
            "  API docs:",
        ]
        lines += [f"    {svc.name:<12} {self.url(svc.name)}/docs" for svc in SERVICES]
        lines += [
            "",
            f"  PostgreSQL   {self.postgres.url}",
            f"  NATS         {self.nats.url}",
            f"  logs         {self.root / 'logs'}",
            "",
            "Press Ctrl-C (or run `make stop`) to stop everything.",
        ]
        return "\n".join(lines)


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of a dev.env file (empty when absent)."""
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.removeprefix("export ").partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values
