"""What hardware this node offers: CPU slots, real NVIDIA GPUs, and simulated GPU capacity."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from cogplane.common.contracts.runners import HardwareCapacity
from cogplane.common.errors import BadRequest
from cogplane.common.hardware import CATALOG, Sku

logger = logging.getLogger(__name__)
NVIDIA_SMI_QUERY = ["--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"]
# Drivers report a little less memory than the marketing size (an 80 GB H100 shows 81559 MiB,
# a 16 GB T4 15360 MiB), so a device counts as a SKU's GPU from 90% of the SKU's size.
MEMORY_TOLERANCE = 0.9


@dataclass(frozen=True)
class Gpu:
    """One real GPU of this node."""

    index: int
    name: str
    memory_mib: int

    def serves(self, sku: Sku) -> bool:
        """Whether this device is the kind of GPU ``sku`` asks for."""
        if sku.gpu_type is None:
            return False
        family = sku.gpu_type.split("-", 1)[0].upper()
        big_enough = self.memory_mib >= sku.gpu_memory_gb * 1024 * MEMORY_TOLERANCE
        return family in self.name.upper().replace("-", " ").split() and big_enough


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """Parse ``nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits``."""
    gpus = []
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        index, name, memory = (part.strip() for part in line.rsplit(",", 2))
        memory = memory.removesuffix("MiB").strip()
        if index.isdigit() and memory.isdigit():
            gpus.append(Gpu(int(index), name, int(memory)))
    return gpus


def detect_gpus() -> list[Gpu]:
    """The NVIDIA GPUs of this node (none when ``nvidia-smi`` is absent or fails)."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    try:
        result = subprocess.run(
            [binary, *NVIDIA_SMI_QUERY], capture_output=True, text=True, timeout=20, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("nvidia-smi failed, offering no GPUs: %s", exc)
        return []
    return parse_nvidia_smi(result.stdout)


def gpu_capacity(gpus: Sequence[Gpu]) -> list[HardwareCapacity]:
    """How many instances of each GPU SKU the real devices can host (each counted alone)."""
    capacities = []
    for sku in (s for s in CATALOG if s.is_gpu):
        fitting = sum(1 for gpu in gpus if gpu.serves(sku))
        if fitting >= sku.gpu_count:
            capacities.append(HardwareCapacity(sku=sku.sku, slots=fitting // sku.gpu_count))
    return capacities


def parse_simulated(spec: str) -> list[HardwareCapacity]:
    """Parse ``'gpu-t4:2,gpu-a40-large:1'`` into simulated capacities."""
    capacities = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        sku, sep, count = item.partition(":")
        if not sep or not count.isdigit() or not sku:
            raise BadRequest(f"simulated_gpus entry {item!r} must look like 'gpu-t4:2'")
        capacities.append(HardwareCapacity(sku=sku, slots=int(count), simulated=True))
    return capacities


def node_capacity(
    cpu_slots: int, simulated: str, gpus: Sequence[Gpu] = ()
) -> list[HardwareCapacity]:
    """The capacity announced in heartbeats: CPU, simulated GPUs, then real GPUs' SKUs.

    A SKU that is both simulated and real is offered as simulated only: the operator asked for it.
    """
    fake = parse_simulated(simulated)
    names = {c.sku for c in fake}
    real = [c for c in gpu_capacity(gpus) if c.sku not in names]
    return [HardwareCapacity(sku="cpu", slots=cpu_slots), *fake, *real]
