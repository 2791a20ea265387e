"""``/v1/files``: upload, list, get, delete and download files, in Replicate's shapes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import mimetypes
import re
from dataclasses import dataclass
from typing import IO, Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from cogplane.common.bus import Bus
from cogplane.common.contracts import files as c
from cogplane.common.contracts.base import FILES_BUCKET, new_id
from cogplane.common.contracts.models import Viewer
from cogplane.common.errors import CogplaneError, InvalidInput, PayloadTooLarge
from cogplane.common.predictions_json import iso
from cogplane.common.service import Runtime
from cogplane.gateway.api.models import Cursor, page_url
from cogplane.gateway.config import DEV_FILES_SIGNING_KEY, GatewaySettings
from cogplane.gateway.deps import BusDep, CurrentViewer, PublicBase, current_caller, viewer_of
from cogplane.gateway.file_links import SIGNATURE_PARAMS, FileSigner
from cogplane.gateway.file_store import open_object

router = APIRouter(prefix="/v1", tags=["files"])
logger = logging.getLogger(__name__)
UPLOAD_PATH = r"/v1/files"
UPLOAD_TYPES = ("multipart/form-data",)
# Room for the multipart framing and the small fields around the file part.
FORM_OVERHEAD = 1024 * 1024
METADATA_MAX_BYTES = 64 * 1024
MIB = 1024 * 1024
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(?:\s*;[ -~]*)?$")
_CHUNK = 1024 * 1024


class FileOut(BaseModel):
    """Replicate's file object."""

    id: str
    name: str
    content_type: str
    size: int
    etag: str
    checksums: dict[str, str]
    metadata: dict[str, Any]
    created_at: str
    expires_at: str
    urls: dict[str, str]


class FilePage(BaseModel):
    next: str | None
    previous: str | None
    results: list[FileOut]


def file_out(info: c.FileInfo, base: str) -> FileOut:
    return FileOut(
        id=info.id,
        name=info.name,
        content_type=info.content_type,
        size=info.size,
        etag=info.md5,
        checksums={"sha256": info.sha256, "md5": info.md5},
        metadata=info.metadata,
        created_at=iso(info.created_at),
        expires_at=iso(info.expires_at),
        urls={"get": f"{base}/v1/files/{info.id}"},
    )


def too_large_detail(limit: int) -> str:
    """Replicate's words for a file over ``limit`` bytes."""
    size = f"{limit // MIB}MB" if limit % MIB == 0 else f"{limit} bytes"
    return f"Files must be less than {size} in size"


def upload_body_limit(settings: GatewaySettings) -> int:
    """The largest multipart body ``POST /v1/files`` takes in (the file and its framing)."""
    return settings.files_max_bytes + FORM_OVERHEAD


def warn_about_dev_key(settings: GatewaySettings) -> None:
    """Say loudly when download links are signed with the published development key."""
    if settings.files_signing_key.get_secret_value() == DEV_FILES_SIGNING_KEY:
        logger.warning(
            "files_signing_key is the development default: anyone can forge file download "
            "links. Set COGPLANE_GATEWAY_FILES_SIGNING_KEY outside development."
        )


def gateway_settings(request: Request) -> GatewaySettings:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    assert isinstance(settings, GatewaySettings)
    return settings


def _invalid(field: str, description: str, kind: str = "invalid") -> InvalidInput:
    return InvalidInput([{"type": kind, "field": field, "description": description}])


# -- reading the upload ------------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    size: int
    sha256: str
    md5: str


def _digest(source: IO[bytes]) -> Digest:
    sha256, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    source.seek(0)
    while chunk := source.read(_CHUNK):
        sha256.update(chunk)
        md5.update(chunk)
        size += len(chunk)
    source.seek(0)
    return Digest(size, sha256.hexdigest(), md5.hexdigest())


async def _read_form(request: Request) -> FormData:
    try:
        return await request.form(max_files=4, max_fields=16, max_part_size=METADATA_MAX_BYTES)
    except StarletteHTTPException as exc:  # python-multipart could not make sense of the body
        raise _invalid("body", f"Malformed multipart/form-data body: {exc.detail}") from exc


def _content_part(form: FormData) -> UploadFile:
    part = form.get("content")
    if part is None:
        raise _invalid("content", "A part named content with the file is required", "required")
    if not isinstance(part, UploadFile):
        raise _invalid("content", "content must be a file part (give it a filename)")
    return part


async def _metadata(form: FormData) -> dict[str, Any]:
    """The ``metadata`` field: a JSON object, sent as a field or as a file part (Node does)."""
    part = form.get("metadata")
    if part is None:
        return {}
    if isinstance(part, UploadFile):
        raw = await part.read(METADATA_MAX_BYTES + 1)
        if len(raw) > METADATA_MAX_BYTES:
            raise _invalid("metadata", f"metadata must be at most {METADATA_MAX_BYTES} bytes")
        text = raw.decode("utf-8", errors="replace")
    else:
        text = part
    try:
        value = json.loads(text, parse_constant=_no_constants) if text.strip() else {}
    except ValueError as exc:
        raise _invalid(
            "metadata", f"metadata must be a JSON object: {exc}", "json_invalid"
        ) from exc
    if not isinstance(value, dict):
        raise _invalid("metadata", "metadata must be a JSON object", "type")
    return value


def _no_constants(name: str) -> Any:
    """NaN and Infinity are not JSON, and PostgreSQL cannot store them in JSONB."""
    raise ValueError(f"{name} is not a JSON value")


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value.strip() else None


def _name(form: FormData, part: UploadFile) -> str:
    given = _field(form, "filename") or part.filename or ""
    name = given.replace("\\", "/").rsplit("/", 1)[-1].strip() or "file"
    if len(name.encode()) > c.MAX_FILE_NAME:
        raise _invalid("filename", f"The file name must be at most {c.MAX_FILE_NAME} bytes")
    return name


def _content_type(form: FormData, part: UploadFile, name: str) -> str:
    given = _field(form, "type") or part.content_type
    if not given or given.lower() == "application/octet-stream":
        given = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if len(given) > c.MAX_CONTENT_TYPE or not _CONTENT_TYPE.match(given):
        raise _invalid("type", f"{given[:100]!r} is not a media type such as image/png")
    return given


# -- routes ------------------------------------------------------------------------------------

_UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["content"],
                    "properties": {
                        "content": {"type": "string", "format": "binary"},
                        "metadata": {"type": "string", "description": "A JSON object."},
                        "filename": {"type": "string", "maxLength": c.MAX_FILE_NAME},
                        "type": {"type": "string", "description": "The media type."},
                    },
                }
            }
        },
    }
}


@router.post(
    "/files",
    response_model=FileOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_UPLOAD_SCHEMA,
)
async def create_file(
    request: Request, viewer: CurrentViewer, bus: BusDep, base: PublicBase
) -> FileOut:
    """Upload a file (multipart: a `content` file part, optional `metadata` JSON); kept 24 h."""
    limit = gateway_settings(request).files_max_bytes
    form = await _read_form(request)
    try:
        part = _content_part(form)
        if part.size is not None and part.size > limit:
            raise PayloadTooLarge(too_large_detail(limit))
        metadata = await _metadata(form)
        name = _name(form, part)
        content_type = _content_type(form, part, name)
        digest = await asyncio.to_thread(_digest, part.file)
        if digest.size > limit:
            raise PayloadTooLarge(too_large_detail(limit))
        create = c.CreateFile(
            viewer=viewer,
            id=new_id(),
            name=name,
            content_type=content_type,
            size=digest.size,
            sha256=digest.sha256,
            md5=digest.md5,
            metadata=metadata,
        )
        info = await bus.request(c.CREATE_FILE, create)
        await _store(bus, viewer, info.id, part.file)
    finally:
        await form.close()
    return file_out(info, base)


async def _store(bus: Bus, viewer: Viewer, file_id: str, source: IO[bytes]) -> None:
    """Put the bytes in the store; on failure drop the record, so no file lacks its bytes."""
    try:
        await bus.put_object(FILES_BUCKET, file_id, source)  # type: ignore[arg-type]
    except BaseException:
        with contextlib.suppress(CogplaneError):
            await bus.request(c.DELETE_FILE, c.FileRef(viewer=viewer, file_id=file_id))
        raise


@router.get("/files", response_model=FilePage)
async def list_files(
    request: Request, viewer: CurrentViewer, bus: BusDep, base: PublicBase, cursor: Cursor = None
) -> FilePage:
    """Your files that have not expired, newest first."""
    page = await bus.request(c.LIST_FILES, c.ListFiles(viewer=viewer, cursor=cursor))
    return FilePage(
        results=[file_out(f, base) for f in page.results],
        next=page_url(request, base, page.next_cursor),
        previous=None,
    )


@router.get("/files/{file_id}", response_model=FileOut)
async def get_file(file_id: str, viewer: CurrentViewer, bus: BusDep, base: PublicBase) -> FileOut:
    """One of your files (404 for files of others)."""
    info = await bus.request(c.GET_FILE, c.FileRef(viewer=viewer, file_id=file_id))
    return file_out(info, base)


@router.delete("/files/{file_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_file(file_id: str, viewer: CurrentViewer, bus: BusDep) -> Response:
    """Delete one of your files and its contents."""
    await bus.request(c.DELETE_FILE, c.FileRef(viewer=viewer, file_id=file_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


SignatureQuery = Annotated[str | None, Query(max_length=200)]


async def _download(
    request: Request,
    bus: Bus,
    file_id: str,
    owner: str | None,
    expiry: str | None,
    signature: str | None,
) -> StreamingResponse:
    given = {"owner": owner, "expiry": expiry, "signature": signature}
    if any(v is not None for v in given.values()):
        missing = [name for name in SIGNATURE_PARAMS if given[name] is None]
        if missing:
            raise _invalid(missing[0], f"A signed link needs {', '.join(SIGNATURE_PARAMS)}")
        signer = FileSigner(gateway_settings(request).files_signing_key)
        signer.verify(owner or "", file_id, expiry or "", signature or "")
        ref = c.SignedFileRef(owner_id=owner or "", file_id=file_id)
        info = await bus.request(c.GET_SIGNED_FILE, ref)
    else:  # no signature: the owner's token
        viewer = viewer_of(await current_caller(request, bus))
        info = await bus.request(c.GET_FILE, c.FileRef(viewer=viewer, file_id=file_id))
    stored = await open_object(bus, info.id)
    return StreamingResponse(
        stored.read(), media_type=info.content_type, headers=_download_headers(info, stored.size)
    )


def _download_headers(info: c.FileInfo, size: int) -> dict[str, str]:
    # Uploaded content is served as an attachment in a sandbox, so a file of type text/html
    # cannot run script on the API's origin.
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", info.name) or "file"
    return {
        "Content-Length": str(size),
        "Content-Disposition": (
            f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(info.name, safe='')}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "ETag": f'"{info.md5}"',
        "Cache-Control": "private, max-age=0",
    }


@router.get("/files/{file_id}/download", response_class=StreamingResponse)
async def download_file(
    request: Request,
    file_id: str,
    bus: BusDep,
    owner: SignatureQuery = None,
    expiry: SignatureQuery = None,
    signature: SignatureQuery = None,
) -> StreamingResponse:
    """A file's contents: with your token, or without one through a signed link."""
    return await _download(request, bus, file_id, owner, expiry, signature)


@router.get(
    "/files/{file_id}/download/{filename:path}",
    response_class=StreamingResponse,
    include_in_schema=False,
)
async def download_named_file(
    request: Request,
    file_id: str,
    filename: str,
    bus: BusDep,
    owner: SignatureQuery = None,
    expiry: SignatureQuery = None,
    signature: SignatureQuery = None,
) -> StreamingResponse:
    """The same as the download above; the last segment names the file for the fetcher."""
    del filename  # only there so that tools that name downloads after the URL keep the name
    return await _download(request, bus, file_id, owner, expiry, signature)
