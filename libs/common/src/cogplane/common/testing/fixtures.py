"""Pytest plugin: an embedded PostgreSQL and NATS server (JetStream) per test session.

Enable it with ``pytest_plugins = ["cogplane.common.testing.fixtures"]`` in a conftest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cogplane.common import migrations
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres, free_port


@pytest.fixture(scope="session")
def infra_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide directory for the servers' data."""
    return tmp_path_factory.mktemp("infra")


@pytest.fixture(scope="session")
def postgres(infra_dir: Path) -> Iterator[EmbeddedPostgres]:
    """A running PostgreSQL server with an empty ``cogplane`` database."""
    server = EmbeddedPostgres(infra_dir / "pg", free_port(), durable=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_server(infra_dir: Path) -> Iterator[EmbeddedNats]:
    """A running NATS server with JetStream."""
    server = EmbeddedNats(infra_dir / "nats", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def migrated_schemas(postgres: EmbeddedPostgres) -> set[str]:
    """Schemas already migrated in this session (see ``migrate_service``)."""
    return set()


def migrate_service(
    postgres: EmbeddedPostgres, done: set[str], package_file: str, schema: str
) -> None:
    """Apply a service's migrations once per session (tests build the database by migrating)."""
    if schema in done:
        return
    migrations.upgrade(Path(package_file).parent / "migrations", postgres.url, schema)
    done.add(schema)
