"""Where coglet reports each prediction's progress, and where it stores output files.

``webhook`` of every prediction we start points here, and so does coglet's ``--upload-url``
when outputs are stored: coglet sends ``PUT {upload-url}{basename}`` with the prediction's id in
``X-Prediction-ID``, and uses the ``Location`` of the answer as the output.
"""

from __future__ import annotations

import tempfile
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from cogplane.common.errors import BadRequest, PayloadTooLarge
from cogplane.runner.instances.deps import ManagerDep
from cogplane.runner.instances.models import Snapshot

router = APIRouter(tags=["instances"])
# Output files up to this size stay in memory while they are received.
SPOOL_BYTES = 8 * 1024 * 1024
MAX_FILENAME = 255


@router.post("/instances/{instance_id}/webhook", summary="Cog's webhook for one instance")
async def receive_webhook(
    instance_id: str,
    snapshot: Snapshot,
    manager: ManagerDep,
    authorization: Annotated[str, Header()] = "",
) -> dict[str, str]:
    """Takes a prediction snapshot from the instance's coglet (Bearer: the instance's token)."""
    manager.on_snapshot(instance_id, authorization.removeprefix("Bearer "), snapshot)
    return {}


def check_filename(filename: str) -> str:
    """The output's file name, refused when it could not be a plain file name."""
    if (
        not filename
        or filename in (".", "..")
        or len(filename) > MAX_FILENAME
        or any(c in filename for c in "/\\")
        or any(ord(c) < 32 for c in filename)
    ):
        raise BadRequest(f"Output file name {filename[:MAX_FILENAME]!r} is not a plain file name")
    return filename


@router.put(
    "/instances/{instance_id}/uploads/{token}/{filename}",
    summary="Cog's upload of one output file",
    status_code=201,
)
async def receive_upload(
    instance_id: str,
    token: str,
    filename: str,
    request: Request,
    manager: ManagerDep,
    x_prediction_id: Annotated[str, Header()] = "",
) -> Response:
    """Store an output file of a running prediction; ``Location`` is its download URL."""
    run = manager.check_upload(instance_id, token, x_prediction_id)
    name = check_filename(filename)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as body:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > manager.output_max_bytes:
                raise PayloadTooLarge(
                    f"Output file {name!r} is larger than {manager.output_max_bytes} bytes"
                )
            body.write(chunk)
        body.seek(0)
        url = await manager.store_output(run, name, body)  # type: ignore[arg-type]
    return Response(status_code=201, headers={"Location": url})
