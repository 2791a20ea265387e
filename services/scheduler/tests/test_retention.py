"""Data retention against a running scheduler with tiny retention periods.

The scheduler gets a database and a NATS server of its own: with periods this short it would
otherwise clear the data of every other test's predictions.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import cogplane.scheduler
from cogplane.common import migrations
from cogplane.common.bus import Bus
from cogplane.common.contracts import predictions as p
from cogplane.common.contracts.base import OUTPUTS_BUCKET, new_id, output_object_name
from cogplane.common.contracts.models import Viewer
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from cogplane.common.testing.apps import running
from cogplane.common.testing.wait import eventually
from cogplane.scheduler.app import create_app
from cogplane.scheduler.config import SchedulerSettings
from cogplane.scheduler.models import SCHEMA

API_RETENTION = 0.3
WEB_RETENTION = 1.5


async def _create_database(url: str, name: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def database_url(postgres: EmbeddedPostgres) -> str:
    name = f"retention_{uuid.uuid4().hex[:8]}"
    asyncio.run(_create_database(postgres.url, name))
    url = postgres.url.rsplit("/", 1)[0] + f"/{name}"
    package = Path(cogplane.scheduler.__file__).parent
    migrations.upgrade(package / "migrations", url, SCHEMA)
    return url


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(Path(tmp_path_factory.mktemp("retention-nats")) / "nats", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def bus(database_url: str, own_nats: EmbeddedNats) -> AsyncIterator[Bus]:
    settings = SchedulerSettings(
        database_url=database_url,
        nats_url=own_nats.url,
        port=0,
        retention_api=timedelta(seconds=API_RETENTION),
        retention_web=timedelta(seconds=WEB_RETENTION),
        retention_interval=timedelta(milliseconds=100),
    )
    async with running(create_app(settings)):
        client = Bus(own_nats.url, "retention-tests", timedelta(seconds=5))
        await client.connect()
        yield client
        await client.close()


def version_spec() -> p.VersionSpec:
    return p.VersionSpec(
        version_id=uuid.uuid4().hex * 2,
        owner="alice",
        name="echo",
        predict="predict.py:Predictor",
        env_key="e" * 64,
        python_version="3.11",
        cog_version="0.13.7",
        source_object="s",
        source_digest="d" * 64,
        openapi_schema={},
    )


async def finished(bus: Bus, viewer: Viewer, source: str) -> p.PredictionRecord:
    """A prediction that ended at once (canceled while queued), with its input kept."""
    version = version_spec()
    submit = p.SubmitPrediction(
        viewer=viewer,
        version=version,
        input={"text": "secret"},
        source=source,
    )
    record = await bus.request(p.SUBMIT_PREDICTION, submit)
    ref = p.PredictionRef(viewer=viewer, prediction_id=record.id)
    canceled = await bus.request(p.CANCEL_PREDICTION, ref)
    assert canceled.status == "canceled"
    assert canceled.input == {"text": "secret"}
    return canceled


async def test_api_data_goes_after_its_period_and_web_data_later(bus: Bus) -> None:
    viewer = Viewer(account_id=new_id(), username="alice")
    api = await finished(bus, viewer, "api")
    web = await finished(bus, viewer, "web")

    async def current(record: p.PredictionRecord) -> p.PredictionRecord:
        ref = p.PredictionRef(viewer=viewer, prediction_id=record.id)
        return await bus.request(p.GET_PREDICTION, ref)

    async def removed(record: p.PredictionRecord) -> p.PredictionRecord | None:
        now = await current(record)
        return now if now.data_removed else None

    cleared = await eventually(lambda: removed(api), timeout=5)
    assert cleared.input == {}
    assert cleared.output is None
    assert cleared.logs == ""
    assert cleared.status == "canceled"  # the prediction itself stays
    kept = await current(web)
    assert not kept.data_removed
    assert kept.input == {"text": "secret"}
    cleared_web = await eventually(lambda: removed(web), timeout=5)
    assert cleared_web.input == {}


async def test_output_and_logs_go_too(bus: Bus, database_url: str) -> None:
    viewer = Viewer(account_id=new_id(), username="alice")
    version = version_spec()
    submit = p.SubmitPrediction(viewer=viewer, version=version, input={"text": "secret"})
    record = await bus.request(p.SUBMIT_PREDICTION, submit)
    instance_id = new_id()
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE scheduler.predictions SET instance_id = :i WHERE id = :p"),
                {"i": instance_id, "p": record.id},
            )
    finally:
        await engine.dispose()
    await bus.publish(
        p.PredictionUpdated(
            prediction_id=record.id,
            instance_id=instance_id,
            seq=0,
            status="succeeded",
            output=["private"],
            logs="private logs\n",
        )
    )
    ref = p.PredictionRef(viewer=viewer, prediction_id=record.id)

    async def state() -> p.PredictionRecord | None:
        now = await bus.request(p.GET_PREDICTION, ref)
        return now if now.status == "succeeded" else None

    ended = await eventually(state, timeout=5)
    assert ended.output == ["private"] or ended.data_removed

    async def removed() -> p.PredictionRecord | None:
        now = await bus.request(p.GET_PREDICTION, ref)
        return now if now.data_removed else None

    cleared = await eventually(removed, timeout=5)
    assert cleared.output is None
    assert cleared.logs == ""
    assert cleared.input == {}


async def test_stored_output_files_are_deleted_with_the_data(bus: Bus, database_url: str) -> None:
    viewer = Viewer(account_id=new_id(), username="alice")
    submit = p.SubmitPrediction(viewer=viewer, version=version_spec(), input={})
    record = await bus.request(p.SUBMIT_PREDICTION, submit)
    instance_id = new_id()
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE scheduler.predictions SET instance_id = :i WHERE id = :p"),
                {"i": instance_id, "p": record.id},
            )
    finally:
        await engine.dispose()
    names = [output_object_name(record.id, new_id(), f"out-{i}.txt") for i in range(2)]
    for name in names:
        await bus.put_object(OUTPUTS_BUCKET, name, io.BytesIO(b"output bytes"))
    # The first file is reported while running, the second only with the final update.
    for seq, (status, files) in enumerate((("processing", names[:1]), ("succeeded", names))):
        await bus.publish(
            p.PredictionUpdated(
                prediction_id=record.id,
                instance_id=instance_id,
                seq=seq,
                status=status,  # type: ignore[arg-type]
                output=[f"https://example.test/deliveries/{n}" for n in files],
                files=files,
            )
        )
    ref = p.PredictionRef(viewer=viewer, prediction_id=record.id)

    async def removed() -> p.PredictionRecord | None:
        now = await bus.request(p.GET_PREDICTION, ref)
        return now if now.data_removed else None

    cleared = await eventually(removed, timeout=5)
    assert cleared.status == "succeeded"
    assert cleared.output is None
    for name in names:
        assert not await bus.has_object(OUTPUTS_BUCKET, name)
