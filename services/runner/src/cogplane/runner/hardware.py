"""What hardware this node offers."""

from __future__ import annotations

from cogplane.common.contracts.runners import HardwareCapacity
from cogplane.common.errors import BadRequest


def parse_simulated(spec: str) -> list[HardwareCapacity]:
    """Parse ``'gpu-t4:2,gpu-a40-large:1'`` into simulated capacities."""
    capacities = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        sku, sep, count = item.partition(":")
        if not sep or not count.isdigit() or not sku:
            raise BadRequest(f"simulated_gpus entry {item!r} must look like 'gpu-t4:2'")
        capacities.append(HardwareCapacity(sku=sku, slots=int(count), simulated=True))
    return capacities


def node_capacity(cpu_slots: int, simulated: str) -> list[HardwareCapacity]:
    """The capacity announced in heartbeats: CPU always, then any simulated GPUs."""
    return [HardwareCapacity(sku="cpu", slots=cpu_slots), *parse_simulated(simulated)]
