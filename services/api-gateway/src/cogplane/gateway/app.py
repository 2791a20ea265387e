"""The gateway's FastAPI app."""

from __future__ import annotations

from dataclasses import replace

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from cogplane.common.contracts.accounts import AccountsChanged
from cogplane.common.contracts.base import BROADCAST_PREFIX
from cogplane.common.contracts.predictions import PredictionChanged, PredictionUpdated
from cogplane.common.http import BodyRule
from cogplane.common.service import Runtime, ServiceSpec, create_service_app
from cogplane.gateway.api import (
    accounts,
    deliveries,
    deployments,
    files,
    models,
    monitoring,
    predictions,
    streams,
    usage,
    webhooks,
)
from cogplane.gateway.auth import CallerCache
from cogplane.gateway.config import GatewaySettings
from cogplane.gateway.versions import VersionCache
from cogplane.gateway.waiters import Waiters
from cogplane.gateway.web import errors as web_errors
from cogplane.gateway.web.pages import account as web_account
from cogplane.gateway.web.pages import base as web_base
from cogplane.gateway.web.pages import deployments as web_deployments
from cogplane.gateway.web.pages import models as web_models
from cogplane.gateway.web.pages import predictions as web_predictions
from cogplane.gateway.web.pages import usage as web_usage
from cogplane.gateway.web.render import STATIC
from cogplane.gateway.web.session import SessionCodec

# Paths of the web app's forms (everything but the API, downloads and the service endpoints).
WEB_FORM_PATHS = r"/(?!v1/|v1$|deliveries/|static/).*"


async def _start(rt: Runtime) -> None:
    settings = rt.settings
    assert isinstance(settings, GatewaySettings)
    rt.extras["sessions"] = SessionCodec(settings.files_signing_key)
    cache = CallerCache(settings.auth_cache_ttl.total_seconds(), settings.auth_cache_size)
    rt.extras["callers"] = cache
    rt.bus.on_connection_lost(cache.clear)
    await rt.bus.on_broadcast(AccountsChanged, cache.forget)
    rt.extras["versions"] = VersionCache(settings.version_cache_ttl.total_seconds())
    waiters = Waiters()
    rt.extras["waiters"] = waiters
    await rt.bus.on_broadcast(PredictionChanged, waiters.on_change)
    await rt.bus.on_events(PredictionUpdated, waiters.on_update)
    hub = streams.StreamHub()
    rt.extras["streams"] = hub
    await rt.bus.on_broadcast(PredictionChanged, hub.on_change)


SPEC = ServiceSpec(
    name="api-gateway",
    title="Cogplane API",
    description=(
        "Replicate-compatible HTTP API (`/v1`). Authenticate with `Authorization: Bearer <token>` "
        "(or the legacy `Token` scheme). Errors are RFC 7807 problem+json."
    ),
    uses_database=False,
    routers=[
        accounts.router,
        models.router,
        predictions.router,
        deployments.router,
        monitoring.router,
        files.router,
        deliveries.router,
        streams.router,
        webhooks.router,
        usage.router,
        web_base.router,
        web_deployments.router,
        web_usage.router,
        web_models.router,
        web_predictions.router,
        web_account.router,
    ],
    start=_start,
    handlers=[
        f"listens to {BROADCAST_PREFIX}.{AccountsChanged.subject_suffix}",
        f"listens to {BROADCAST_PREFIX}.{PredictionChanged.subject_suffix}",
    ],
)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway app for ``settings`` (read from the environment when omitted)."""
    settings = settings or GatewaySettings()
    push = BodyRule(models.PUSH_PATH, settings.push_max_bytes, models.PUSH_TYPES, json=False)
    upload = BodyRule(
        files.UPLOAD_PATH, files.upload_body_limit(settings), files.UPLOAD_TYPES, json=False
    )
    # Web pages take their forms as url-encoded bodies (and JSON like the rest).
    forms = BodyRule(WEB_FORM_PATHS, 64 * 1024, ("application/x-www-form-urlencoded",))
    files.warn_about_dev_key(settings)
    app = create_service_app(replace(SPEC, body_rules=[push, upload, forms]), settings)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    web_errors.install(app)
    return app
