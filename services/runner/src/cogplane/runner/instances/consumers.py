"""The instance calls this node answers, on its own subjects (``runner_subject``)."""

from __future__ import annotations

from cogplane.common.contracts.instances import (
    CANCEL_ON_INSTANCE,
    RUN_PREDICTION,
    START_INSTANCE,
    STOP_INSTANCE,
    runner_subject,
)
from cogplane.common.service import Runtime
from cogplane.runner.instances.service import InstanceManager

CALLS = (START_INSTANCE, STOP_INSTANCE, RUN_PREDICTION, CANCEL_ON_INSTANCE)


async def register(rt: Runtime, manager: InstanceManager) -> None:
    """Serve the instance calls addressed to ``manager``'s node."""
    node, bus = manager.node_id, rt.bus
    await bus.serve(
        START_INSTANCE, manager.start_instance, subject=runner_subject(node, START_INSTANCE)
    )
    await bus.serve(
        STOP_INSTANCE, manager.stop_instance, subject=runner_subject(node, STOP_INSTANCE)
    )
    await bus.serve(
        RUN_PREDICTION, manager.run_prediction, subject=runner_subject(node, RUN_PREDICTION)
    )
    await bus.serve(
        CANCEL_ON_INSTANCE,
        manager.cancel_prediction,
        subject=runner_subject(node, CANCEL_ON_INSTANCE),
    )
    # The scheduler may call as soon as the node is announced: make sure the server routes
    # these subjects here already (subscriptions reach it asynchronously).
    await bus.nc.flush()
