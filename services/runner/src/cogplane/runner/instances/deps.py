"""Dependencies of the instance routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cogplane.runner.instances.service import InstanceManager


def _manager(request: Request) -> InstanceManager:
    manager: InstanceManager = request.app.state.instances
    return manager


ManagerDep = Annotated[InstanceManager, Depends(_manager)]
