"""``cogplane usage`` against a real gateway and registry, with a stand-in for billing.

The module runs its own NATS server, so that nothing else in the session answers billing's
calls. The CLI is synchronous: it runs in a thread while the gateway serves in the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cogplane.registry
from cogplane.cli.main import app
from cogplane.common.bus import Bus
from cogplane.common.contracts import billing as b
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from cogplane.common.testing.apps import running
from cogplane.common.testing.fixtures import migrate_service
from cogplane.common.testing.served import served
from cogplane.gateway.app import create_app as create_gateway
from cogplane.gateway.config import GatewaySettings
from cogplane.registry.app import create_app as create_registry
from cogplane.registry.bootstrap import bootstrap
from cogplane.registry.config import RegistrySettings
from cogplane.registry.models import SCHEMA


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Platform:
    url: str
    registry: RegistrySettings
    asked: list[b.UsageQuery] = field(default_factory=list)

    async def login(self, tmp_path: Path) -> tuple[dict[str, str], str, str]:
        """The CLI's environment for a fresh user; the user's name and organization."""
        username, org = unique("admin"), unique("org")
        result = await bootstrap(self.registry, username, org)
        env = {
            "COGPLANE_URL": self.url,
            "COGPLANE_TOKEN": str(result["token"]),
            "XDG_CONFIG_HOME": str(tmp_path),
        }
        return env, username, org


@pytest.fixture(scope="module")
def usage_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(Path(tmp_path_factory.mktemp("cli-usage-nats")) / "nats", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def usage_registry_settings(
    postgres: EmbeddedPostgres, migrated_schemas: set[str], usage_nats: EmbeddedNats
) -> RegistrySettings:
    migrate_service(postgres, migrated_schemas, cogplane.registry.__file__, SCHEMA)
    return RegistrySettings(database_url=postgres.url, nats_url=usage_nats.url, port=0)


@pytest.fixture(scope="module")
async def platform(
    usage_registry_settings: RegistrySettings, postgres: EmbeddedPostgres, usage_nats: EmbeddedNats
) -> AsyncIterator[Platform]:
    settings = GatewaySettings(database_url=postgres.url, nats_url=usage_nats.url, port=0)
    gateway = create_gateway(settings)
    billing = Bus(usage_nats.url, "billing", timedelta(seconds=5))
    async with (
        running(create_registry(usage_registry_settings)),
        served(gateway, lifespan=True) as url,
    ):
        await asyncio.wait_for(gateway.state.runtime.started.wait(), 30)
        found = Platform(url, usage_registry_settings)

        async def usage(query: b.UsageQuery) -> b.UsageReport:
            found.asked.append(query)
            line = b.UsageLine(
                model=f"{query.account}/painter",
                kind="idle",
                day="2025-03-02",
                seconds="42.500",
                cost="0.02",
                cost_exact="0.015",
            )
            return b.UsageReport(
                account=query.account,
                since=query.since,
                until=query.until,
                group_by=query.group_by,
                lines=[line],
                total_seconds="42.500",
                total_cost="0.02",
                total_cost_exact="0.015",
            )

        await billing.connect()
        await billing.serve(b.USAGE, usage)
        yield found
        await billing.close()


async def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run ``cogplane ARGS`` in a thread (the gateway answers in this loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)
    return result.exit_code, result.output


async def test_usage_prints_a_table_and_the_total(platform: Platform, tmp_path: Path) -> None:
    env, _, org = await platform.login(tmp_path)

    code, output = await cli(
        env,
        "usage",
        "--since",
        "2025-03-01",
        "--until",
        "2025-03-31T00:00:00Z",
        "--group-by",
        "model,kind",
        "--account",
        org,
    )

    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == f"Usage of {org} from 2025-03-01T00:00:00Z to 2025-03-31T00:00:00Z"
    header = next(line for line in lines if "seconds" in line)
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == [
        "model",
        "kind",
        "seconds",
        "cost (USD)",
    ]
    row = next(line for line in output.splitlines() if "painter" in line)
    assert [cell.strip() for cell in row.split("│")[1:-1]] == [
        f"{org}/painter",
        "idle",
        "42.500",
        "0.02",
    ]
    assert lines[-1] == "Total: 42.500 s, $0.02 (exactly $0.015)"
    [query] = platform.asked[-1:]
    assert query.account == org
    assert query.group_by == ["model", "kind"]
    assert (query.since, query.until) == (
        datetime(2025, 3, 1, tzinfo=UTC),
        datetime(2025, 3, 31, tzinfo=UTC),
    )


async def test_usage_as_json(platform: Platform, tmp_path: Path) -> None:
    env, username, _ = await platform.login(tmp_path)

    code, output = await cli(env, "usage", "--json")

    assert code == 0, output
    report = json.loads(output)
    assert report["account"] == username
    assert report["group_by"] == ["day"]
    assert report["lines"] == [
        {"day": "2025-03-02", "seconds": "42.500", "cost": "0.02", "cost_exact": "0.015"}
    ]
    assert report["total_cost_exact"] == "0.015"


async def test_usage_refusals_are_readable(platform: Platform, tmp_path: Path) -> None:
    env, _, _ = await platform.login(tmp_path)
    asked = len(platform.asked)

    bad_group = await cli(env, "usage", "--group-by", "week")
    bad_since = await cli(env, "usage", "--since", "last tuesday")
    other = await cli(env, "usage", "--account", unique("someone"))

    assert bad_group[0] == 1
    assert "Input validation failed" in bad_group[1]
    assert "group_by: Unknown 'week'" in bad_group[1]
    assert bad_since[0] == 1
    assert "since:" in bad_since[1]
    assert other[0] == 1
    assert "Not found" in other[1]
    assert len(platform.asked) == asked
