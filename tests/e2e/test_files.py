"""The Files API through the official ``replicate`` client, against the running platform."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from replicate.client import Client
from replicate.exceptions import ReplicateError

from cogplane.cli.devstack import DevStack
from cogplane.common.bus import Bus
from cogplane.common.contracts.accounts import VERIFY_TOKEN, VerifyToken
from cogplane.gateway.config import GatewaySettings
from cogplane.gateway.file_links import signed_download_url

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(stack: DevStack) -> Client:
    return Client(api_token=stack.token, base_url=stack.gateway_url)


def test_create_get_list_download_delete(
    client: Client, stack: DevStack, auth: dict[str, str], tmp_path: Path
) -> None:
    content = os.urandom(300_000)  # several object-store chunks
    path = tmp_path / "photo.png"
    path.write_bytes(content)

    created = client.files.create(path, metadata={"purpose": "e2e"})

    assert created.name == "photo.png"
    assert created.content_type == "image/png"
    assert created.size == len(content)
    assert created.checksums["sha256"] == hashlib.sha256(content).hexdigest()
    assert created.etag == hashlib.md5(content, usedforsecurity=False).hexdigest()
    assert created.metadata == {"purpose": "e2e"}
    assert created.urls == {"get": f"{stack.gateway_url}/v1/files/{created.id}"}
    assert created.expires_at is not None
    lifetime = datetime.fromisoformat(created.expires_at) - datetime.fromisoformat(
        created.created_at
    )
    assert lifetime == timedelta(hours=24)

    assert client.files.get(created.id) == created
    assert created.id in [f.id for f in client.files.list()]

    download = httpx.get(f"{created.urls['get']}/download", headers=auth, timeout=10)
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["content-type"] == "image/png"

    assert client.files.delete(created.id) is True
    with pytest.raises(ReplicateError) as caught:
        client.files.get(created.id)
    assert caught.value.status == 404
    assert caught.value.detail == "File not found"
    with pytest.raises(ReplicateError) as caught:
        client.files.delete(created.id)
    assert caught.value.status == 404


def test_file_objects_and_signed_links(client: Client, stack: DevStack) -> None:
    handle = io.BytesIO(b"a small text file\n")
    handle.name = "notes.txt"
    created = client.files.create(handle)
    assert (created.name, created.content_type, created.metadata) == ("notes.txt", "text/plain", {})

    owner = asyncio.run(_account_id(stack))
    url = signed_download_url(
        stack.gateway_url,
        owner,
        created.id,
        timedelta(minutes=1),
        key=GatewaySettings().files_signing_key,
        filename=created.name,
    )
    fetched = httpx.get(url, timeout=10)  # no token, as Cog fetches its inputs
    assert fetched.status_code == 200
    assert fetched.content == b"a small text file\n"
    tampered = httpx.get(url.replace("expiry=", "expiry=1"), timeout=10)
    assert tampered.status_code == 403
    assert tampered.headers["content-type"] == "application/problem+json"
    client.files.delete(created.id)
    assert httpx.get(url, timeout=10).status_code == 404


def test_bad_uploads_are_clear_errors(stack: DevStack, auth: dict[str, str]) -> None:
    url = f"{stack.gateway_url}/v1/files"
    missing = httpx.post(url, files={"file": ("a.txt", b"x")}, headers=auth, timeout=10)
    assert missing.status_code == 422
    assert missing.json()["invalid_fields"][0]["field"] == "content"
    bad_metadata = httpx.post(
        url,
        files={"content": ("a.txt", b"x")},
        data={"metadata": "{nope"},
        headers=auth,
        timeout=10,
    )
    assert bad_metadata.status_code == 422
    assert bad_metadata.json()["invalid_fields"][0]["field"] == "metadata"
    as_json = httpx.post(url, json={"content": "x"}, headers=auth, timeout=10)
    assert as_json.status_code == 415


async def _account_id(stack: DevStack) -> str:
    """The development account's id: signed links name the owner by account id."""
    assert stack.token is not None
    bus = Bus(stack.nats.url, "e2e-files", timedelta(seconds=5))
    await bus.connect()
    try:
        caller = await bus.request(VERIFY_TOKEN, VerifyToken(token=stack.token))
    finally:
        await bus.close()
    return caller.account.id
