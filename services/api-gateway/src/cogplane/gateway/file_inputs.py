"""File URLs of ours in prediction inputs become signed links the model can fetch.

Clients upload local files with ``POST /v1/files`` and put the file's ``urls.get`` into the
input. Cog downloads URL inputs itself, without a token, so each such URL is swapped for a
signed download link, once the gateway has checked that the caller may read the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cogplane.common.bus import Bus
from cogplane.common.contracts import files as c
from cogplane.common.contracts.models import Viewer
from cogplane.common.errors import CogplaneError, InvalidInput, NotFound
from cogplane.gateway.config import GatewaySettings
from cogplane.gateway.file_links import FileLink, FileSigner, parse_file_link


@dataclass
class _Rewriter:
    viewer: Viewer
    bus: Bus
    base: str
    settings: GatewaySettings
    invalid: list[dict[str, str]] = field(default_factory=list)
    files: dict[str, c.FileInfo | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.signer = FileSigner(self.settings.files_signing_key)

    async def value(self, value: Any, path: str) -> Any:
        if isinstance(value, dict):
            return {k: await self.value(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [await self.value(v, f"{path}.{i}") for i, v in enumerate(value)]
        if isinstance(value, str):
            return await self.string(value, path)
        return value

    async def string(self, value: str, path: str) -> str:
        try:
            link = parse_file_link(value, self.base)
        except ValueError as exc:
            self._refuse(path, f"{value[:200]} {exc}")
            return value
        if link is None or self._validly_signed(link):
            return value
        info = await self._file(link.file_id)
        if info is None:
            self._refuse(path, f"File {link.file_id[:64]} not found (or it is not yours)")
            return value
        return self.signer.url(
            self.base, info.owner_id, info.id, self.settings.files_link_ttl, filename=info.name
        )

    def _validly_signed(self, link: FileLink) -> bool:
        """A signed link is a capability of its own: whoever holds it may pass it on."""
        if not link.signed:
            return False
        q = link.query
        try:
            self.signer.verify(q["owner"], link.file_id, q["expiry"], q["signature"])
        except CogplaneError:
            return False
        return True

    async def _file(self, file_id: str) -> c.FileInfo | None:
        if file_id not in self.files:  # each file is looked up once, however often it appears
            ref = c.FileRef(viewer=self.viewer, file_id=file_id[:200])
            try:
                self.files[file_id] = await self.bus.request(c.GET_FILE, ref)
            except NotFound:
                self.files[file_id] = None
        return self.files[file_id]

    def _refuse(self, path: str, description: str) -> None:
        self.invalid.append({"type": "file", "field": path, "description": description})


async def rewrite_file_inputs(
    input: dict[str, Any],
    viewer: Viewer,
    *,
    bus: Bus,
    base: str,
    settings: GatewaySettings,
) -> dict[str, Any]:
    """``input`` with each of our file URLs replaced by a signed download link.

    A string that is ``{base}/v1/files/{id}`` (or its ``/download`` form) is checked against
    the registry: a file the viewer may read becomes a link valid for ``files_link_ttl`` that
    needs no token and ends in the file's name; an already validly signed link is kept as it is.
    Strings, lists and objects are searched at any depth; other values are left alone.

    Args:
        input: The prediction's input (not changed; a new dict is returned).
        viewer: The caller.
        bus: The gateway's NATS connection (the registry answers who may read a file).
        base: The gateway's public base URL, as ``PublicBase`` gives it.
        settings: The gateway's settings (signing key and link lifetime).

    Raises:
        InvalidInput: 422 naming every input field (``input.<name>``) that refers to a file
            that does not exist, has expired, or belongs to someone else.
    """
    rewriter = _Rewriter(viewer, bus, base, settings)
    result = {key: await rewriter.value(value, f"input.{key}") for key, value in input.items()}
    if rewriter.invalid:
        raise InvalidInput(rewriter.invalid)
    return result
