"""Output files served from the outputs object store: by their unguessable URL, no token needed."""

from __future__ import annotations

import io

import httpx

from cogplane.common.bus import Bus
from cogplane.common.contracts.base import (
    DELIVERY_PATH,
    OUTPUTS_BUCKET,
    new_id,
    output_object_name,
)


async def stored(bus: Bus, filename: str, content: bytes) -> str:
    """Store an output as a runner does; its path on the gateway."""
    name = output_object_name(new_id(), new_id(), filename)
    await bus.put_object(OUTPUTS_BUCKET, name, io.BytesIO(content))
    return f"{DELIVERY_PATH}/{name}"


async def test_an_output_downloads_without_a_token(gateway: httpx.AsyncClient, bus: Bus) -> None:
    path = await stored(bus, "out.png", b"\x89PNG not really")
    response = await gateway.get(path)
    assert response.status_code == 200
    assert response.content == b"\x89PNG not really"
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == str(len(b"\x89PNG not really"))
    assert response.headers["content-disposition"].startswith('inline; filename="out.png"')
    # Untrusted bytes on the API's origin: never sniffed into HTML, never able to run script.
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "sandbox"


async def test_any_authorization_header_is_tolerated(gateway: httpx.AsyncClient, bus: Bus) -> None:
    # Replicate's Python client sends the caller's token to the file host.
    path = await stored(bus, "notes.txt", b"hello")
    response = await gateway.get(path, headers={"Authorization": "Bearer r8_not_a_real_token"})
    assert response.status_code == 200
    assert response.text == "hello"
    assert response.headers["content-type"].startswith("text/plain")


async def test_unknown_or_guessed_outputs_are_404(gateway: httpx.AsyncClient, bus: Bus) -> None:
    path = await stored(bus, "secret.txt", b"private")
    prediction_id, _token, filename = path.removeprefix(f"{DELIVERY_PATH}/").split("/")
    for guess in (
        f"{DELIVERY_PATH}/{prediction_id}/{new_id()}/{filename}",  # wrong token
        f"{DELIVERY_PATH}/{prediction_id}/{_token}/other.txt",
        f"{DELIVERY_PATH}/{prediction_id}/{_token}",
        f"{DELIVERY_PATH}/{prediction_id}/{_token}/..%2F..%2Fsecret.txt",
    ):
        response = await gateway.get(guess)
        assert response.status_code == 404, guess
        assert response.headers["content-type"] == "application/problem+json"
        assert "private" not in response.text


async def test_a_deleted_output_is_gone(gateway: httpx.AsyncClient, bus: Bus) -> None:
    path = await stored(bus, "gone.txt", b"soon gone")
    assert (await gateway.get(path)).status_code == 200
    assert await bus.delete_object(OUTPUTS_BUCKET, path.removeprefix(f"{DELIVERY_PATH}/"))
    assert (await gateway.get(path)).status_code == 404
    assert not await bus.delete_object(OUTPUTS_BUCKET, path.removeprefix(f"{DELIVERY_PATH}/"))
