"""This node's free capacity: an instance holds a slot of its SKU (and real GPUs) while it lives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cogplane.common.contracts.runners import HardwareCapacity
from cogplane.common.errors import Conflict
from cogplane.common.hardware import get_sku
from cogplane.runner.hardware import Gpu


@dataclass(frozen=True)
class Placement:
    """Where an instance runs: its SKU, the GPUs it owns, and whether they are pretend ones."""

    sku: str
    simulated: bool = False
    devices: tuple[int, ...] = ()

    @property
    def cuda_visible_devices(self) -> str:
        """CUDA_VISIBLE_DEVICES for its process: its own GPUs, or none at all.

        CPU and simulated instances see no GPU, so they cannot grab one that belongs to another.
        """
        return ",".join(str(index) for index in self.devices)


class Capacity:
    """Counts free slots per SKU and hands out real GPU devices by index."""

    def __init__(self, node_id: str, offered: Sequence[HardwareCapacity], gpus: Sequence[Gpu]):
        self.node_id = node_id
        self.free = {c.sku: c.slots for c in offered if c.sku == "cpu" or c.simulated}
        self.simulated = {c.sku for c in offered if c.simulated}
        self.gpus = list(gpus)
        self.taken: set[int] = set()

    def reserve(self, sku: str) -> Placement:
        """A placement for one instance of ``sku``; Conflict when the node has none left."""
        if self.free.get(sku, 0) > 0:
            self.free[sku] -= 1
            return Placement(sku, simulated=sku in self.simulated)
        devices = self._devices(sku)
        if devices is None:
            raise Conflict(f"no capacity for {sku} on {self.node_id}")
        self.taken.update(devices)
        return Placement(sku, devices=devices)

    def _devices(self, sku: str) -> tuple[int, ...] | None:
        spec = get_sku(sku)
        if spec is None or not spec.is_gpu or sku in self.free:
            return None
        fitting = [g.index for g in self.gpus if g.index not in self.taken and g.serves(spec)]
        if len(fitting) < spec.gpu_count:
            return None
        return tuple(fitting[: spec.gpu_count])

    def release(self, placement: Placement) -> None:
        """Give back what ``placement`` held (call once per reservation)."""
        if placement.devices:
            self.taken.difference_update(placement.devices)
        else:
            self.free[placement.sku] = self.free.get(placement.sku, 0) + 1
