"""The cogplane CLI against the running platform."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cogplane.cli.devstack import DevStack
from cogplane.cli.main import app

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli_env(stack: DevStack, tmp_path: Path) -> dict[str, str]:
    assert stack.token is not None
    return {
        "COGPLANE_URL": stack.gateway_url,
        "COGPLANE_TOKEN": stack.token,
        "XDG_CONFIG_HOME": str(tmp_path),
    }


def run(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_account(cli_env: dict[str, str]) -> None:
    assert json.loads(run(cli_env, "account", "--json"))["username"] == "dev"
    assert "dev (user): Development user" in run(cli_env, "account")


def test_tokens_create_list_revoke(stack: DevStack, cli_env: dict[str, str]) -> None:
    created = json.loads(run(cli_env, "tokens", "create", "--name", "ci", "--json"))
    secret = created["token"]
    headers = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{stack.gateway_url}/v1/account", headers=headers).status_code == 200

    listed = json.loads(run(cli_env, "tokens", "list", "--json"))
    assert created["id"] in {t["id"] for t in listed}
    assert secret not in json.dumps(listed)

    assert "Revoked" in run(cli_env, "tokens", "revoke", created["id"])
    assert httpx.get(f"{stack.gateway_url}/v1/account", headers=headers).status_code == 401
    listed = json.loads(run(cli_env, "tokens", "list", "--json"))
    assert created["id"] not in {t["id"] for t in listed}


def test_revoking_an_unknown_token_fails_clearly(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["tokens", "revoke", "nope"], env=cli_env)
    assert result.exit_code == 1
    assert "Token not found" in result.output


def test_login_saves_credentials_that_later_commands_use(stack: DevStack, tmp_path: Path) -> None:
    assert stack.token is not None
    env = {"XDG_CONFIG_HOME": str(tmp_path), "COGPLANE_URL": "", "COGPLANE_TOKEN": ""}
    output = run(env, "login", "--url", stack.gateway_url, "--token", stack.token)
    assert "as dev" in output
    saved = json.loads((tmp_path / "cogplane" / "config.json").read_text())
    assert saved == {"url": stack.gateway_url, "token": stack.token}
    assert (tmp_path / "cogplane" / "config.json").stat().st_mode & 0o077 == 0
    assert json.loads(run(env, "account", "--json"))["username"] == "dev"


def test_login_with_a_bad_token_saves_nothing(stack: DevStack, tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    result = CliRunner().invoke(
        app, ["login", "--url", stack.gateway_url, "--token", "r8_bad"], env=env
    )
    assert result.exit_code == 1
    assert "You did not pass a valid authentication token" in result.output
    assert not (tmp_path / "cogplane" / "config.json").exists()
