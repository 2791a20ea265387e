"""Serve an ASGI app on a real loopback port, in the test's event loop.

``httpx.ASGITransport`` buffers whole responses, so streams (server-sent events) and anything
that must be reached by URL (webhook receivers, clients that open their own connections) need a
real server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import uvicorn
from starlette.types import ASGIApp

from cogplane.common.embedded import free_port


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # leave the test runner's signal handlers alone


@asynccontextmanager
async def served(app: ASGIApp, *, lifespan: bool = False) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on a free port; yield its base URL (no trailing slash).

    Args:
        app: The ASGI app.
        lifespan: Run the app's lifespan too (service apps need it to start).
    """
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on" if lifespan else "off",
        access_log=False,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                await task  # it failed to start: raise why
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
