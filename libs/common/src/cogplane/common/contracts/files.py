"""Files uploaded through ``/v1/files``: the registry's calls about their metadata.

The bytes live in the ``FILES_BUCKET`` object store under the file id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from cogplane.common.contracts.base import Contract, Empty, Rpc
from cogplane.common.contracts.models import PageRequest, Viewer

FILE_ID_PATTERN = r"^[0-9a-f]{32}$"
MAX_FILE_NAME = 255
MAX_CONTENT_TYPE = 255


class FileInfo(Contract):
    """A stored file: who owns it, what it is, and until when it is kept."""

    id: str
    owner_id: str = Field(description="The id of the account that uploaded it.")
    name: str
    content_type: str
    size: int
    sha256: str
    md5: str
    metadata: dict[str, Any]
    created_at: datetime
    expires_at: datetime


class CreateFile(Contract):
    """Record a file the gateway has received (its bytes go to the store under ``id``)."""

    viewer: Viewer
    id: str = Field(pattern=FILE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=MAX_FILE_NAME)
    content_type: str = Field(min_length=1, max_length=MAX_CONTENT_TYPE)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    md5: str = Field(pattern=r"^[0-9a-f]{32}$")
    metadata: dict[str, Any] = Field(default_factory=dict)


class FileRef(Contract):
    viewer: Viewer
    file_id: str = Field(max_length=200)


class SignedFileRef(Contract):
    """A file named by a download link whose signature the gateway has checked."""

    owner_id: str = Field(max_length=64)
    file_id: str = Field(max_length=200)


class ListFiles(PageRequest):
    """The viewer's files, newest first."""


class FilePage(Contract):
    results: list[FileInfo]
    next_cursor: str | None = None


CREATE_FILE = Rpc("registry.files.create", CreateFile, FileInfo)
GET_FILE = Rpc("registry.files.get", FileRef, FileInfo)
LIST_FILES = Rpc("registry.files.list", ListFiles, FilePage)
DELETE_FILE = Rpc("registry.files.delete", FileRef, Empty)
GET_SIGNED_FILE = Rpc("registry.files.get_signed", SignedFileRef, FileInfo)
