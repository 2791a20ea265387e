"""The loopback HTTP server that receives Cog's webhooks.

It is the manager's own server, not a route of the runner's public app: it must keep taking
webhooks while the runner shuts down and drains its instances, after the public server has
stopped accepting connections; and it listens on loopback only, where coglet runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from cogplane.common.http import install_error_handlers
from cogplane.runner.instances.api import webhooks
from cogplane.runner.instances.service import InstanceManager

HOST = "127.0.0.1"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Signals belong to the runner's own server: this one stops when told to.
        yield


def receiver_app(manager: InstanceManager) -> FastAPI:
    """The webhook app of ``manager``."""
    app = FastAPI(title="Cogplane runner webhooks", openapi_url=None, docs_url=None)
    app.state.instances = manager
    install_error_handlers(app)
    app.include_router(webhooks.router)
    return app


class WebhookReceiver:
    """Serves ``receiver_app`` on ``127.0.0.1:port`` (0: a free port) until ``stop``."""

    def __init__(self, manager: InstanceManager, port: int) -> None:
        config = uvicorn.Config(
            receiver_app(manager), log_config=None, access_log=False, lifespan="off"
        )
        self.server = _Server(config)
        self.port = port
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Start serving; the base URL of the webhooks."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, self.port))
        port = sock.getsockname()[1]
        self._task = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started:
            if self._task.done():
                await self._task  # raises what stopped it
                raise RuntimeError("the webhook receiver stopped at once")
            await asyncio.sleep(0.01)
        return f"http://{HOST}:{port}"

    async def stop(self) -> None:
        """Stop serving."""
        self.server.should_exit = True
        if self._task is not None:
            await self._task
