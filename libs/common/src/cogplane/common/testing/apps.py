"""Run a service app in-process against the session's real PostgreSQL and NATS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from cogplane.common.service import Runtime


@asynccontextmanager
async def running(app: FastAPI, timeout: float = 30.0) -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app``'s lifespan, wait until it is ready, and yield an HTTP client bound to it."""
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        await asyncio.wait_for(runtime.started.wait(), timeout)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
