"""The hardware catalog: every SKU, what it is, its default price (data shared by all services).

Prices are Replicate's published per-second prices in US dollars (``research/replicate-api.md`` §6).
They are defaults: billing reads them through its own configurable price table.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Sku:
    """One kind of hardware an instance can run on."""

    sku: str
    name: str
    gpu_type: str | None
    gpu_count: int
    gpu_memory_gb: int
    cpu_count: int
    memory_gb: int
    price_per_second: Decimal

    @property
    def is_gpu(self) -> bool:
        """Whether instances of this SKU need GPUs."""
        return self.gpu_count > 0


def _gpu(
    sku: str, name: str, gpu: str, count: int, vram: int, cpus: int, ram: int, price: str
) -> Sku:
    return Sku(sku, name, gpu, count, vram, cpus, ram, Decimal(price))


def _multiples(base: Sku, skus: dict[int, str], label: str) -> list[Sku]:
    return [
        Sku(
            sku,
            f"{n}x {label}",
            base.gpu_type,
            n,
            base.gpu_memory_gb,
            base.cpu_count * n,
            base.memory_gb * n,
            base.price_per_second * n,
        )
        for n, sku in skus.items()
    ]


_CPU = Sku("cpu", "CPU", None, 0, 0, 4, 8, Decimal("0.000100"))
_T4 = _gpu("gpu-t4", "Nvidia T4 GPU", "T4", 1, 16, 4, 16, "0.000225")
_A40_SMALL = _gpu("gpu-a40-small", "Nvidia A40 GPU", "A40", 1, 48, 4, 16, "0.000575")
_A40_LARGE = _gpu("gpu-a40-large", "Nvidia A40 (Large) GPU", "A40", 1, 48, 10, 72, "0.000725")
_L40S = _gpu("gpu-l40s", "Nvidia L40S GPU", "L40S", 1, 48, 10, 65, "0.000975")
_A100 = _gpu("gpu-a100-large", "Nvidia A100 (80GB) GPU", "A100-80GB", 1, 80, 10, 144, "0.001400")
_H100 = _gpu("gpu-h100", "Nvidia H100 GPU", "H100", 1, 80, 10, 144, "0.001525")

CATALOG: tuple[Sku, ...] = (
    _CPU,
    _T4,
    _A40_SMALL,
    _A40_LARGE,
    *_multiples(
        _A40_LARGE,
        {2: "gpu-a40-large-2x", 4: "gpu-a40-large-4x", 8: "gpu-a40-large-8x"},
        "Nvidia A40 (Large) GPU",
    ),
    _L40S,
    *_multiples(_L40S, {2: "gpu-2x-l40s", 4: "gpu-4x-l40s", 8: "gpu-8x-l40s"}, "Nvidia L40S GPU"),
    _A100,
    *_multiples(
        _A100,
        {2: "gpu-a100-large-2x", 4: "gpu-a100-large-4x", 8: "gpu-a100-large-8x"},
        "Nvidia A100 (80GB) GPU",
    ),
    _H100,
    *_multiples(_H100, {2: "gpu-h100-2x", 4: "gpu-h100-4x", 8: "gpu-h100-8x"}, "Nvidia H100 GPU"),
)

BY_SKU: dict[str, Sku] = {s.sku: s for s in CATALOG}


def get_sku(sku: str) -> Sku | None:
    """The catalog entry of ``sku``, or None."""
    return BY_SKU.get(sku)
