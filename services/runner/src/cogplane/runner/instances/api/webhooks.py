"""Where coglet reports each prediction's progress (``webhook`` of every prediction we start)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header

from cogplane.runner.instances.deps import ManagerDep
from cogplane.runner.instances.models import Snapshot

router = APIRouter(tags=["instances"])


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
