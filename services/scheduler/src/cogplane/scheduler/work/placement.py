"""Pure decisions of the scheduler: which instance takes which prediction, which node hosts what."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class OpenInstance:
    """An instance that can take work, and how many more predictions it can run now."""

    id: str
    free_slots: int
    preferred: bool = True  # of the target's current release (rollouts move work to those)


@dataclass(frozen=True)
class NodeOffer:
    """A runner node's free capacity for one hardware SKU."""

    node_id: str
    free: int


def assign(queued: Sequence[str], instances: Sequence[OpenInstance]) -> list[tuple[str, str]]:
    """Hand the oldest queued predictions to free slots, the emptiest instance first.

    FIFO: predictions are taken in the order given; each instance gets at most its free slots.
    Preferred instances (of the current release, during a rollout) are filled first.
    """
    free = {i.id: i.free_slots for i in instances if i.free_slots > 0}
    preferred = {i.id for i in instances if i.preferred}
    plan: list[tuple[str, str]] = []
    for prediction in queued:
        if not free:
            break
        instance = max(free, key=lambda i: (i in preferred, free[i], i))
        plan.append((prediction, instance))
        free[instance] -= 1
        if free[instance] == 0:
            del free[instance]
    return plan


def choose_node(offers: Sequence[NodeOffer]) -> str | None:
    """The node with the most free capacity (spreading instances), or None when all are full."""
    open_offers = [o for o in offers if o.free > 0]
    if not open_offers:
        return None
    return max(open_offers, key=lambda o: (o.free, o.node_id)).node_id


def free_slots(capacity: Sequence[dict[str, object]], sku: str, used: int) -> int:
    """How many more instances of ``sku`` a node can take, from its heartbeat's capacity.

    The capacity counts instances per SKU (a GPU SKU's slots are its devices divided by the
    GPUs an instance needs), so each live instance of the SKU on the node uses one slot. The
    runner has the last word: it refuses an instance it has no devices for.
    """
    offered = sum(int(str(c["slots"])) for c in capacity if c.get("sku") == sku)
    return offered - used


def no_capacity_reason(sku: str) -> str:
    """What a pending instance shows while no runner has its hardware free."""
    return f"Waiting for capacity: no runner has {sku} free"
