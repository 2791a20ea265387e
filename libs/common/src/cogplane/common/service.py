"""The skeleton every service shares: lifespan, health endpoints, start-up waits, graceful stop.

A service supplies its settings, its routers and a ``start`` hook that registers its NATS
handlers once both NATS and (when it has one) PostgreSQL answer. The app starts serving at once:
while a dependency is unreachable the runtime retries with backoff, logs what it waits for, and
``/readyz`` answers 503 naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from cogplane.common import migrations
from cogplane.common.bus import Bus
from cogplane.common.config import ServiceSettings
from cogplane.common.db import Database
from cogplane.common.http import BodyRule, RequestGuard, install_error_handlers, problem_response
from cogplane.common.retry import RetryPolicy
from cogplane.common.telemetry import setup_tracing, shutdown_tracing

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The resources a running service owns, stored on ``app.state.runtime``."""

    name: str
    settings: ServiceSettings
    bus: Bus
    db: Database | None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    waiting_for: dict[str, str] = field(default_factory=dict)
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """Run a background loop owned by the service (cancelled on shutdown)."""
        task = asyncio.ensure_future(coro)
        task.set_name(f"{self.name}:{name}")
        self.background.append(task)
        return task

    def require_db(self) -> Database:
        """The database (services that own tables always have one)."""
        assert self.db is not None, f"{self.name} has no database"
        return self.db


StartHook = Callable[[Runtime], Awaitable[None]]
StopHook = Callable[[Runtime], Awaitable[None]]


@dataclass
class ServiceSpec:
    """What makes one service different from another."""

    name: str
    title: str
    description: str
    uses_database: bool
    schema: str | None = None
    migrations: Path | None = None
    routers: Sequence[APIRouter] = ()
    start: StartHook | None = None
    stop: StopHook | None = None
    handlers: Sequence[str] = ()
    body_rules: Sequence[BodyRule] = ()


async def _connect_with_retry(
    what: str, attempt: Callable[[], Awaitable[None]], rt: Runtime
) -> None:
    policy = RetryPolicy(initial=0.2, maximum=rt.settings.connect_retry_max.total_seconds())
    for number, delay in enumerate(policy.delays(), start=1):
        try:
            await attempt()
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".strip()
            rt.waiting_for[what] = reason
            if number == 1 or number % 10 == 0:
                logger.warning("%s waits for %s: %s (attempt %d)", rt.name, what, reason, number)
            await asyncio.sleep(delay)
        else:
            rt.waiting_for.pop(what, None)
            if number > 1:
                logger.info("%s reached %s after %d attempts", rt.name, what, number)
            return


async def _bring_up(rt: Runtime, spec: ServiceSpec) -> None:
    rt.waiting_for["nats"] = "connecting"
    if rt.db is not None:
        rt.waiting_for["database"] = "connecting"
        await _connect_with_retry("database", rt.db.ping, rt)
        if rt.settings.migrate_on_start and spec.migrations is not None and spec.schema:
            rt.waiting_for["migrations"] = "applying"
            url = rt.settings.database_url.get_secret_value()
            await asyncio.to_thread(migrations.upgrade, spec.migrations, url, spec.schema)
            rt.waiting_for.pop("migrations")
    await _connect_with_retry("nats", rt.bus.connect, rt)
    if spec.start is not None:
        await spec.start(rt)
    rt.started.set()
    logger.info("%s is ready", rt.name)


async def readiness(rt: Runtime) -> dict[str, str]:
    """Problems that make the service unready, by dependency (empty when ready)."""
    problems = dict(rt.waiting_for)
    if "nats" not in problems and not rt.bus.connected:
        problems["nats"] = f"disconnected from {rt.bus.url}" + (
            f" ({rt.bus.last_error})" if rt.bus.last_error else ""
        )
    if rt.db is not None and "database" not in problems:
        try:
            await rt.db.ping()
        except Exception as exc:
            problems["database"] = f"{type(exc).__name__}: {exc}".strip() or "unreachable"
    if not problems and not rt.started.is_set():
        problems["startup"] = "registering handlers"
    return problems


def _health_router(spec: ServiceSpec) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/livez", summary="Liveness: the process serves HTTP")
    async def livez() -> dict[str, str]:
        """Answers while the process is alive."""
        return {"status": "ok", "service": spec.name}

    @router.get("/readyz", summary="Readiness: PostgreSQL and NATS answer, handlers registered")
    async def readyz(request: Request) -> JSONResponse:
        """503 problem+json naming each unready dependency, else 200."""
        rt: Runtime = request.app.state.runtime
        problems = await readiness(rt)
        if problems:
            detail = "; ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
            return problem_response(
                {"title": "Not ready", "detail": detail, "status": 503, "checks": problems}
            )
        checks = {"nats": "ok"} | ({"database": "ok"} if rt.db is not None else {})
        return JSONResponse({"status": "ok", "service": spec.name, "checks": checks})

    @router.get("/nats-handlers", summary="The NATS subjects this service handles")
    async def nats_handlers() -> dict[str, list[str]]:
        """Request-reply subjects and JetStream consumers served by this service."""
        return {"handlers": list(spec.handlers)}

    return router


def create_service_app(spec: ServiceSpec, settings: ServiceSettings) -> FastAPI:
    """Build the FastAPI app of a service; resources are created in its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_tracing(spec.name, settings)
        async with AsyncExitStack() as stack:
            db = Database(settings, spec.name) if spec.uses_database else None
            if db is not None:
                stack.push_async_callback(db.close)
                _instrument_engine(db)
            bus = Bus(settings.nats_url, spec.name, settings.request_timeout)
            stack.push_async_callback(bus.close)
            rt = Runtime(spec.name, settings, bus, db)
            app.state.runtime = rt
            bring_up = asyncio.create_task(_bring_up(rt, spec))
            stack.push_async_callback(_stop, rt, spec, bring_up)
            yield
        shutdown_tracing()

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version="0.1.0",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    install_error_handlers(app)
    rules = [*spec.body_rules, BodyRule("", settings.max_body_bytes)]
    app.add_middleware(RequestGuard, rules=rules)
    app.include_router(_health_router(spec))
    for router in spec.routers:
        app.include_router(router)
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="livez,readyz")
    return app


def _instrument_engine(db: Database) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=db.engine.sync_engine)


async def _stop(rt: Runtime, spec: ServiceSpec, bring_up: asyncio.Task[None]) -> None:
    """Stop intake, let in-flight work finish within the grace period, then cancel loops."""
    bring_up.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await bring_up
    grace = rt.settings.shutdown_grace.total_seconds()
    await rt.bus.stop_intake()
    if spec.stop is not None and rt.started.is_set():
        await spec.stop(rt)
    await rt.bus.wait_idle(grace)
    for task in rt.background:
        task.cancel()
    await asyncio.gather(*rt.background, return_exceptions=True)
    logger.info("%s stopped", rt.name)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run ``app`` under uvicorn; SIGTERM stops intake and drains up to the grace period."""
    import uvicorn

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the rest
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.shutdown_grace.total_seconds()),
        access_log=False,
        lifespan="on",
    )
    uvicorn.Server(config).run()
