"""Output files of predictions, served from the outputs object store.

A runner stores each output file a model returns (Cog's ``--upload-url``) under
``{prediction_id}/{token}/{filename}`` and gives its URL here as the output. The random token
makes the URL unguessable, so it works without a token as Replicate's delivery URLs do (the
Node client fetches outputs without one; the Python client sends its token, which is ignored).
The file disappears with the prediction's data when retention removes it.
"""

from __future__ import annotations

import mimetypes
import re
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from cogplane.common.contracts.base import DELIVERY_PATH, OUTPUTS_BUCKET, output_object_name
from cogplane.gateway.deps import BusDep
from cogplane.gateway.file_store import open_object

router = APIRouter(tags=["files"])


@router.get(
    f"{DELIVERY_PATH}/{{prediction_id}}/{{token}}/{{filename}}",
    response_class=StreamingResponse,
    summary="Download an output file",
    responses={404: {"description": "No such file, or its prediction's data was removed"}},
)
async def download_output(
    prediction_id: str, token: str, filename: str, bus: BusDep
) -> StreamingResponse:
    """An output file of a prediction, by the URL its output gives (no token needed)."""
    stored = await open_object(
        bus, output_object_name(prediction_id, token, filename), OUTPUTS_BUCKET
    )
    media_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", filename) or "output"
    return StreamingResponse(
        stored.read(),
        media_type=media_type,
        headers={
            "Content-Length": str(stored.size),
            "Content-Disposition": (
                f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
            ),
            # Model output is untrusted: shown inline, but never able to run script here.
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, max-age=3600",
        },
    )
