"""Billing's pure rules: classes, parts, exact money, day splits and estimates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cogplane.billing.config import BillingSettings
from cogplane.billing.rules import (
    HOURS_PER_MONTH,
    Policy,
    cost,
    estimate,
    instance_class,
    ms_between,
    part_kind,
    round_line,
    split_by_day,
)
from cogplane.common.hardware import CATALOG

# Replicate's published prices (research/replicate-api.md §6), written out by hand: the
# estimate must match these, not whatever the catalog says.
HAND_PRICES = {
    "cpu": "0.000100",
    "gpu-t4": "0.000225",
    "gpu-a40-small": "0.000575",
    "gpu-a40-large": "0.000725",
    "gpu-a40-large-2x": "0.001450",
    "gpu-a40-large-4x": "0.002900",
    "gpu-a40-large-8x": "0.005800",
    "gpu-l40s": "0.000975",
    "gpu-2x-l40s": "0.001950",
    "gpu-4x-l40s": "0.003900",
    "gpu-8x-l40s": "0.007800",
    "gpu-a100-large": "0.001400",
    "gpu-a100-large-2x": "0.002800",
    "gpu-a100-large-4x": "0.005600",
    "gpu-a100-large-8x": "0.011200",
    "gpu-h100": "0.001525",
    "gpu-h100-2x": "0.003050",
    "gpu-h100-4x": "0.006100",
    "gpu-h100-8x": "0.012200",
}
HAND_HOURLY = {  # $/hr from the same table
    "cpu": "0.36",
    "gpu-t4": "0.81",
    "gpu-a40-small": "2.07",
    "gpu-a40-large": "2.61",
    "gpu-l40s": "3.51",
    "gpu-a100-large": "5.04",
    "gpu-h100": "5.49",
    "gpu-8x-l40s": "28.08",
    "gpu-a100-large-8x": "40.32",
    "gpu-h100-8x": "43.92",
}


def test_every_catalog_price_is_replicates() -> None:
    assert {s.sku: s.price_per_second for s in CATALOG} == {
        k: Decimal(v) for k, v in HAND_PRICES.items()
    }


@pytest.mark.parametrize("sku", sorted(HAND_PRICES))
def test_the_estimate_of_each_sku_matches_hand_computed_values(sku: str) -> None:
    price = BillingSettings(port=0).prices[sku]
    hour_at_2, month_at_2 = estimate(price, 2)
    per_hour = Decimal(HAND_PRICES[sku]) * 3600
    assert hour_at_2 == per_hour * 2
    assert month_at_2 == per_hour * 2 * 730
    assert estimate(price, 0) == (Decimal(0), Decimal(0))
    if sku in HAND_HOURLY:
        assert round_line(estimate(price, 1)[0]) == Decimal(HAND_HOURLY[sku])
    assert HOURS_PER_MONTH == 730


def test_classes_follow_the_target_and_the_visibility() -> None:
    assert instance_class("deployment:abc", "public") == "deployment"
    assert instance_class("deployment:abc", None) == "deployment"
    assert instance_class("version:v", "private") == "private"
    assert instance_class("version:v", "public") == "public"


def test_the_default_policy_is_replicates() -> None:
    policy = Policy()
    assert policy.public.instance_time == []
    assert policy.public.prediction_time is True
    for klass in ("private", "deployment"):
        rule = policy.rule(klass)  # type: ignore[arg-type]
        assert rule.instance_time == ["setup", "idle", "processing"]
        assert rule.prediction_time is False


def test_the_policy_and_prices_are_configurable_as_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "COGPLANE_BILLING_POLICY",
        '{"public": {"instance_time": ["processing"], "prediction_time": false}}',
    )
    monkeypatch.setenv("COGPLANE_BILLING_PRICES", '{"cpu": "0.0002"}')
    settings = BillingSettings(port=0)
    assert settings.policy.public.instance_time == ["processing"]
    assert settings.policy.private.instance_time == ["setup", "idle", "processing"]
    assert settings.prices["cpu"] == Decimal("0.0002")
    assert settings.prices["gpu-t4"] == Decimal("0.000225")  # the others keep their defaults


def test_parts_of_an_instances_time() -> None:
    assert part_kind("booting", 0) == "setup"
    assert part_kind("setting_up", 0) == "setup"
    assert part_kind("idle", 0) == "idle"
    assert part_kind("processing", 2) == "processing"
    assert part_kind("draining", 1) == "processing"
    assert part_kind("draining", 0) == "idle"
    assert part_kind("pending", 0) is None
    assert part_kind("stopped", 0) is None


def test_money_is_exact_and_rounded_only_on_lines() -> None:
    price = Decimal("0.000225")
    assert cost(price, 1) == Decimal("0.000000225")
    assert cost(price, 1234567) == Decimal("277.777575") / 1000
    assert sum(cost(price, 1) for _ in range(1000)) == cost(price, 1000)  # no drift
    assert round_line(Decimal("0.005")) == Decimal("0.01")  # half up
    assert round_line(Decimal("0.0049999")) == Decimal("0.00")
    assert ms_between(10.0, 10.0004) == 0
    assert ms_between(10.0, 10.0006) == 1
    assert ms_between(12.0, 10.0) == 0


def test_day_splits_add_up_exactly() -> None:
    start = datetime(2026, 3, 1, 23, 59, 59, 500000, tzinfo=UTC)
    parts = list(split_by_day(start, 86_400_000 + 1500))
    assert [p.milliseconds for p in parts] == [500, 86_400_000, 1000]
    assert [p.day.day for p in parts] == [1, 2, 3]
    assert parts[1].started_at == datetime(2026, 3, 2, tzinfo=UTC)
    assert [p.index for p in parts] == [0, 1, 2]
    (single,) = split_by_day(datetime(2026, 3, 1, 12, tzinfo=UTC), 5000)
    assert single.milliseconds == 5000
