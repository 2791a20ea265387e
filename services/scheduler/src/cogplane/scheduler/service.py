"""Runner inventory logic: which nodes are online and what they offer."""

from __future__ import annotations

from datetime import datetime, timedelta

from cogplane.common.contracts.runners import HardwareCapacity, RunnerNode
from cogplane.scheduler.models import RunnerNodeRow


def is_online(row: RunnerNodeRow, now: datetime, offline_after: timedelta) -> bool:
    """A node is online while it has not stopped and was heard from recently."""
    return not row.stopped and now - row.last_seen_at <= offline_after


def to_node(row: RunnerNodeRow, now: datetime, offline_after: timedelta) -> RunnerNode:
    """The contract view of a node row."""
    return RunnerNode(
        node_id=row.node_id,
        hostname=row.hostname,
        started_at=row.started_at,
        last_seen_at=row.last_seen_at,
        capacity=[HardwareCapacity.model_validate(c) for c in row.capacity],
        draining=row.draining,
        online=is_online(row, now, offline_after),
    )
