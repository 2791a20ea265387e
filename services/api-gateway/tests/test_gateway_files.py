"""``/v1/files``: uploads, listing, downloads (with a token or a signed link), deletion, expiry,
garbage uploads, and file URLs in prediction inputs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cogplane.common.bus import Bus
from cogplane.common.contracts import accounts as a
from cogplane.common.contracts import files as c
from cogplane.common.contracts.base import FILES_BUCKET, new_id
from cogplane.common.contracts.models import Viewer
from cogplane.common.db import Database
from cogplane.common.embedded import EmbeddedNats, EmbeddedPostgres
from cogplane.common.errors import Forbidden, InvalidInput
from cogplane.common.service import Runtime
from cogplane.common.testing.apps import running
from cogplane.gateway.app import create_app as create_gateway
from cogplane.gateway.config import GatewaySettings
from cogplane.gateway.file_inputs import rewrite_file_inputs
from cogplane.gateway.file_links import FileSigner, parse_file_link, signed_download_url
from cogplane.registry.config import RegistrySettings
from cogplane.registry.files.consumers import sweep_expired

Actor = tuple[str, a.Caller]
MakeActor = Callable[[], Awaitable[Actor]]
BASE = "http://testserver"
SETTINGS = GatewaySettings(port=0)  # the key and link lifetime the conftest's gateway uses
KEY = SETTINGS.files_signing_key
FILE_FIELDS = {
    "id",
    "name",
    "content_type",
    "size",
    "etag",
    "checksums",
    "metadata",
    "created_at",
    "expires_at",
    "urls",
}
SMALL_LIMIT = 64 * 1024


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def viewer(actor: Actor) -> Viewer:
    caller = actor[1]
    return Viewer(account_id=caller.account.id, username=caller.account.username)


async def upload(
    client: httpx.AsyncClient,
    token: str,
    content: bytes = b"hello, files\n",
    name: str = "hello.txt",
    content_type: str = "text/plain",
    metadata: Any = None,
) -> httpx.Response:
    data = {} if metadata is None else {"metadata": json.dumps(metadata)}
    return await client.post(
        "/v1/files",
        files={"content": (name, content, content_type)},
        data=data,
        headers=auth(token),
    )


async def uploaded(client: httpx.AsyncClient, token: str, **kwargs: Any) -> dict[str, Any]:
    response = await upload(client, token, **kwargs)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def invalid_fields(response: httpx.Response) -> list[str]:
    return [f["field"] for f in problem(response, 422)["invalid_fields"]]


@pytest.fixture(scope="module")
async def small_files_gateway(
    postgres: EmbeddedPostgres, nats_server: EmbeddedNats, registry: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway that takes files of at most ``SMALL_LIMIT`` bytes."""
    settings = GatewaySettings(
        database_url=postgres.url, nats_url=nats_server.url, port=0, files_max_bytes=SMALL_LIMIT
    )
    async with running(create_gateway(settings)) as client:
        yield client


# -- the round trip ----------------------------------------------------------------------------


async def test_upload_get_list_download_delete(
    gateway: httpx.AsyncClient, new_user: MakeActor, bus: Bus
) -> None:
    token, _ = await new_user()
    content = b"\x00\x01binary\xff" * 1000
    body = await uploaded(
        gateway,
        token,
        content=content,
        name="data.bin",
        content_type="application/x-thing",
        metadata={"purpose": "test", "n": [1, 2]},
    )
    assert set(body) == FILE_FIELDS
    file_id = body["id"]
    md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()
    assert body["name"] == "data.bin"
    assert body["content_type"] == "application/x-thing"
    assert body["size"] == len(content)
    assert body["etag"] == md5
    assert body["checksums"] == {"sha256": hashlib.sha256(content).hexdigest(), "md5": md5}
    assert body["metadata"] == {"purpose": "test", "n": [1, 2]}
    assert body["urls"] == {"get": f"{BASE}/v1/files/{file_id}"}
    created = datetime.fromisoformat(body["created_at"])
    assert body["created_at"].endswith("Z")
    assert datetime.fromisoformat(body["expires_at"]) - created == timedelta(hours=24)

    got = await gateway.get(body["urls"]["get"], headers=auth(token))
    assert got.status_code == 200
    assert got.json() == body

    listed = await gateway.get("/v1/files", headers=auth(token))
    assert listed.json() == {"next": None, "previous": None, "results": [body]}

    download = await gateway.get(f"/v1/files/{file_id}/download", headers=auth(token))
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["content-type"] == "application/x-thing"
    assert download.headers["content-length"] == str(len(content))
    assert download.headers["content-disposition"].startswith('attachment; filename="data.bin"')
    assert download.headers["x-content-type-options"] == "nosniff"

    deleted = await gateway.delete(f"/v1/files/{file_id}", headers=auth(token))
    assert deleted.status_code == 204
    assert not await bus.has_object(FILES_BUCKET, file_id)
    for response in (
        await gateway.get(f"/v1/files/{file_id}", headers=auth(token)),
        await gateway.get(f"/v1/files/{file_id}/download", headers=auth(token)),
        await gateway.delete(f"/v1/files/{file_id}", headers=auth(token)),
    ):
        assert problem(response, 404)["detail"] == "File not found"
    listed = await gateway.get("/v1/files", headers=auth(token))
    assert listed.json()["results"] == []


async def test_empty_file_and_defaults(gateway: httpx.AsyncClient, new_user: MakeActor) -> None:
    token, _ = await new_user()
    body = await uploaded(gateway, token, content=b"", name="C:\\photos\\cat.png", content_type="")
    assert body["size"] == 0
    assert body["name"] == "cat.png"
    assert body["content_type"] == "image/png"  # guessed from the name
    assert body["metadata"] == {}
    assert body["checksums"]["sha256"] == hashlib.sha256(b"").hexdigest()
    download = await gateway.get(f"/v1/files/{body['id']}/download", headers=auth(token))
    assert download.status_code == 200
    assert download.content == b""


async def test_metadata_as_a_json_part_as_node_sends_it(
    gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, _ = await new_user()
    response = await gateway.post(
        "/v1/files",
        files={
            "content": ("a.txt", b"abc", "text/plain"),
            "metadata": ("blob", b'{"from": "node"}', "application/json"),
        },
        headers=auth(token),
    )
    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == {"from": "node"}


async def test_list_pages_newest_first_with_absolute_next(
    gateway: httpx.AsyncClient, new_user: MakeActor, bus: Bus
) -> None:
    token, me = await new_user()
    ids = []
    for number in range(101):  # rows only: listing never reads the bytes
        create = c.CreateFile(
            viewer=viewer((token, me)),
            id=new_id(),
            name=f"f{number}.txt",
            content_type="text/plain",
            size=0,
            sha256=hashlib.sha256(b"").hexdigest(),
            md5=hashlib.md5(b"", usedforsecurity=False).hexdigest(),
        )
        ids.append((await bus.request(c.CREATE_FILE, create)).id)
    first = (await gateway.get("/v1/files", headers=auth(token))).json()
    assert len(first["results"]) == 100
    assert first["next"].startswith(f"{BASE}/v1/files?cursor=")
    second = (await gateway.get(first["next"], headers=auth(token))).json()
    assert second["next"] is None
    listed = [f["id"] for f in first["results"] + second["results"]]
    assert listed == ids[::-1]


# -- who may see what ---------------------------------------------------------------------------


async def test_files_of_others_are_not_found(
    gateway: httpx.AsyncClient, new_user: MakeActor, bus: Bus
) -> None:
    owner, _ = await new_user()
    other, _ = await new_user()
    file_id = (await uploaded(gateway, owner))["id"]
    for response in (
        await gateway.get(f"/v1/files/{file_id}", headers=auth(other)),
        await gateway.get(f"/v1/files/{file_id}/download", headers=auth(other)),
        await gateway.delete(f"/v1/files/{file_id}", headers=auth(other)),
    ):
        assert problem(response, 404)["detail"] == "File not found"
    assert (await gateway.get("/v1/files", headers=auth(other))).json()["results"] == []
    assert await bus.has_object(FILES_BUCKET, file_id)
    for response in (
        await gateway.get(f"/v1/files/{file_id}"),
        await gateway.get(f"/v1/files/{file_id}/download"),
        await upload(gateway, ""),
    ):
        assert problem(response, 401)["title"] == "Unauthenticated"


# -- garbage ------------------------------------------------------------------------------------


async def test_garbage_uploads(gateway: httpx.AsyncClient, new_user: MakeActor) -> None:
    token, _ = await new_user()
    headers = auth(token)
    no_content = await gateway.post(
        "/v1/files", files={"other": ("a.txt", b"x", "text/plain")}, headers=headers
    )
    assert invalid_fields(no_content) == ["content"]
    as_field = await gateway.post(
        "/v1/files",
        files={"content": (None, b"just text"), "other": ("a.txt", b"x")},
        headers=headers,
    )
    assert invalid_fields(as_field) == ["content"]
    urlencoded = await gateway.post("/v1/files", data={"content": "x"}, headers=headers)
    assert "multipart/form-data" in problem(urlencoded, 415)["detail"]
    empty = await gateway.post("/v1/files", headers=headers)
    assert invalid_fields(empty) == ["content"]

    json_body = await gateway.post("/v1/files", json={"content": "x"}, headers=headers)
    assert "multipart/form-data" in problem(json_body, 415)["detail"]
    no_boundary = await gateway.post(
        "/v1/files", content=b"--x\r\n", headers=headers | {"Content-Type": "multipart/form-data"}
    )
    assert invalid_fields(no_boundary) == ["body"]

    for metadata in ("{not json", "[1, 2]", '"text"', '{"a": "\\u0000"}', '{"a": NaN}'):
        response = await gateway.post(
            "/v1/files",
            files={"content": ("a.txt", b"x", "text/plain")},
            data={"metadata": metadata},
            headers=headers,
        )
        assert invalid_fields(response)[0].startswith("metadata"), metadata
    bad_type = await upload(gateway, token, content_type="not a type")
    assert invalid_fields(bad_type) == ["type"]
    long_name = await upload(gateway, token, name="x" * 300)
    assert invalid_fields(long_name) == ["filename"]
    assert (await gateway.get("/v1/files", headers=headers)).json()["results"] == []


async def test_oversized_files_are_refused(
    small_files_gateway: httpx.AsyncClient, new_user: MakeActor
) -> None:
    token, _ = await new_user()
    over = await upload(small_files_gateway, token, content=b"x" * (SMALL_LIMIT + 1))
    assert problem(over, 413)["detail"] == f"Files must be less than {SMALL_LIMIT} bytes in size"
    way_over = await upload(small_files_gateway, token, content=b"x" * (SMALL_LIMIT + 2**21))
    assert problem(way_over, 413)["status"] == 413
    at_limit = await upload(small_files_gateway, token, content=b"x" * SMALL_LIMIT)
    assert at_limit.status_code == 201, at_limit.text
    listed = await small_files_gateway.get("/v1/files", headers=auth(token))
    assert [f["size"] for f in listed.json()["results"]] == [SMALL_LIMIT]


# -- signed links -------------------------------------------------------------------------------


async def test_signed_links_need_no_token(gateway: httpx.AsyncClient, new_user: MakeActor) -> None:
    token, me = await new_user()
    body = await uploaded(gateway, token, content=b"signed bytes", name="s.txt")
    owner, file_id = me.account.id, body["id"]
    url = signed_download_url(BASE, owner, file_id, timedelta(minutes=5), key=KEY)
    download = await gateway.get(url)
    assert download.status_code == 200
    assert download.content == b"signed bytes"
    named = signed_download_url(
        BASE, owner, file_id, timedelta(minutes=5), key=KEY, filename="s.txt"
    )
    assert urlsplit(named).path.endswith("/download/s.txt")
    assert (await gateway.get(named, headers={"Authorization": "Bearer junk"})).content == (
        b"signed bytes"
    )

    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    path = f"/v1/files/{file_id}/download"
    forged = [
        query | {"signature": KEY.get_secret_value()},
        query | {"expiry": str(int(query["expiry"]) + 3600)},
        query | {"owner": new_id()},
    ]
    for params in forged:
        response = await gateway.get(f"{path}?{urlencode(params)}")
        assert problem(response, 403)["detail"] == "This download link is not valid"
    other = await uploaded(gateway, token)
    response = await gateway.get(f"/v1/files/{other['id']}/download?{urlencode(query)}")
    assert problem(response, 403)["status"] == 403
    expired = signed_download_url(BASE, owner, file_id, timedelta(seconds=-1), key=KEY)
    assert problem(await gateway.get(expired), 403)["detail"] == "This download link has expired"
    wrong_key = signed_download_url(
        BASE, owner, file_id, timedelta(minutes=5), key=SecretStr("another key")
    )
    assert problem(await gateway.get(wrong_key), 403)["status"] == 403
    partial = await gateway.get(f"{path}?owner={owner}")
    assert invalid_fields(partial) == ["expiry"]

    await gateway.delete(f"/v1/files/{file_id}", headers=auth(token))
    assert problem(await gateway.get(url), 404)["detail"] == "File not found"


def test_signer_accepts_urlsafe_base64_and_refuses_junk() -> None:
    signer = FileSigner(KEY)
    signature = signer.signature("o", "f", "4102444800")
    signer.verify("o", "f", "4102444800", signature.replace("+", "-").replace("/", "_"))
    for expiry in ("", "soon", "-1"):
        with pytest.raises(Forbidden, match="not valid"):
            signer.verify("o", "f", expiry, signer.signature("o", "f", expiry))


# -- expiry -------------------------------------------------------------------------------------


async def test_expired_files_are_hidden_then_swept(
    gateway: httpx.AsyncClient,
    new_user: MakeActor,
    bus: Bus,
    db: AsyncEngine,
    registry_settings: RegistrySettings,
) -> None:
    token, _ = await new_user()
    old = (await uploaded(gateway, token))["id"]
    fresh = (await uploaded(gateway, token))["id"]
    async with db.begin() as conn:
        await conn.execute(
            text(
                "UPDATE registry.files SET expires_at = now() - interval '1 second' WHERE id = :i"
            ),
            {"i": old},
        )
    assert problem(await gateway.get(f"/v1/files/{old}", headers=auth(token)), 404)
    listed = await gateway.get("/v1/files", headers=auth(token))
    assert [f["id"] for f in listed.json()["results"]] == [fresh]

    database = Database(registry_settings, "files-tests")
    try:
        assert await sweep_expired(Runtime("files-tests", registry_settings, bus, database)) >= 1
    finally:
        await database.close()
    async with db.connect() as conn:
        rows = await conn.execute(text("SELECT id FROM registry.files WHERE id = :i"), {"i": old})
        assert rows.first() is None
    assert not await bus.has_object(FILES_BUCKET, old)
    assert await bus.has_object(FILES_BUCKET, fresh)


# -- file URLs in prediction inputs -------------------------------------------------------------


def test_parse_file_link() -> None:
    file_id = new_id()
    assert parse_file_link("https://elsewhere/v1/files/x", BASE) is None
    assert parse_file_link("data:text/plain;base64,eA==", BASE) is None
    assert parse_file_link(f"{BASE}/v1/filesx", BASE) is None
    for tail in ("", "/download", "/download/cat.png", "?x=1", "/download?owner=o#frag"):
        link = parse_file_link(f"{BASE}/v1/files/{file_id}{tail}", BASE)
        assert link is not None
        assert link.file_id == file_id
    link = parse_file_link(f"{BASE}/v1/files/{file_id}/download?owner=o&expiry=1&signature=s", BASE)
    assert link is not None
    assert link.signed
    for bad in ("", f"{file_id}/other", f"{file_id}/download/a/b", "?owner=o"):
        with pytest.raises(ValueError, match="not the URL of a file"):
            parse_file_link(f"{BASE}/v1/files/{bad}", BASE)


async def test_rewrite_file_inputs(
    gateway: httpx.AsyncClient, new_user: MakeActor, bus: Bus
) -> None:
    me = await new_user()
    body = await uploaded(gateway, me[0], content=b"input bytes", name="in put.png")
    url = body["urls"]["get"]
    given = {
        "image": url,
        "images": [url, f"{url}/download", "https://example.com/x.png"],
        "nested": {"deep": [url]},
        "prompt": "a cat",
        "steps": 4,
        "flag": None,
    }
    result = await rewrite_file_inputs(given, viewer(me), bus=bus, base=BASE, settings=SETTINGS)
    assert given["image"] == url  # the caller's dict is left alone
    signed = result["image"]
    assert signed.startswith(f"{BASE}/v1/files/{body['id']}/download/in%20put.png?")
    assert result["images"][:2] == [signed, signed]
    assert result["images"][2] == "https://example.com/x.png"
    assert result["nested"] == {"deep": [signed]}
    assert (result["prompt"], result["steps"], result["flag"]) == ("a cat", 4, None)
    expiry = int(parse_qs(urlsplit(signed).query)["expiry"][0])
    assert expiry > datetime.now().timestamp() + SETTINGS.files_link_ttl.total_seconds() - 60
    fetched = await gateway.get(signed)  # as Cog fetches it: no token
    assert fetched.content == b"input bytes"

    again = await rewrite_file_inputs(
        {"image": signed}, viewer(me), bus=bus, base=BASE, settings=SETTINGS
    )
    assert again == {"image": signed}  # a validly signed link is passed on as it is


async def test_rewrite_refuses_files_the_caller_cannot_read(
    gateway: httpx.AsyncClient, new_user: MakeActor, bus: Bus
) -> None:
    owner = await new_user()
    other = await new_user()
    url = (await uploaded(gateway, owner[0]))["urls"]["get"]
    given = {
        "mine": url,
        "list": ["fine", f"{BASE}/v1/files/{new_id()}"],
        "odd": f"{BASE}/v1/files/{new_id()}/thumbnail",
        "text": "no url here",
    }
    with pytest.raises(InvalidInput) as caught:
        await rewrite_file_inputs(given, viewer(other), bus=bus, base=BASE, settings=SETTINGS)
    fields = [f["field"] for f in caught.value.extra["invalid_fields"]]
    assert fields == ["input.mine", "input.list.1", "input.odd"]
    assert caught.value.status == 422
    assert "not found" in caught.value.detail
