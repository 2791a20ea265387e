"""The autoscaler's decision, as a pure function of observed state and recent needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cogplane.autoscaler.decide import Policy, Sample, decide, needed
from cogplane.common.contracts.scaling import InstanceView, TargetState

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
POLICY = Policy(idle_timeout=timedelta(seconds=30), stable_window=timedelta(seconds=60))


def instance(
    state: str = "idle", *, release: int = 1, since: float = 0, busy: int = 0, slots: int = 1
) -> InstanceView:
    at = NOW - timedelta(seconds=since)
    return InstanceView(
        id=f"i-{state}-{since}-{release}",
        state=state,
        busy=busy,
        slots=slots,
        state_since=at,
        created_at=at,
        release=release,
    )


def target(
    *instances: InstanceView,
    queued: int = 0,
    inflight: int = 0,
    low: int = 0,
    high: int = 5,
    slots: int = 1,
    release: int = 1,
    quiet: float = 1000,
) -> TargetState:
    return TargetState(
        target="deployment:x",
        kind="deployment",
        release=release,
        queued=queued,
        inflight=inflight,
        last_activity_at=NOW - timedelta(seconds=quiet),
        desired=len(instances),
        instances=list(instances),
        min_instances=low,
        max_instances=high,
        slots=slots,
    )


def test_needed_counts_work_per_slot() -> None:
    assert needed(target(queued=7, slots=4), POLICY) == 2
    assert needed(target(queued=0), POLICY) == 0
    assert needed(target(queued=3, inflight=1), Policy(timedelta(1), target_per_slot=2)) == 2


def test_scale_from_zero_on_the_first_queued_prediction() -> None:
    decision = decide(target(queued=1), NOW, POLICY)
    assert decision.desired == 1
    assert decision.reason.startswith("burst: 1 queued")


def test_burst_goes_to_max_and_no_further() -> None:
    decision = decide(target(instance(), queued=50, inflight=1), NOW, POLICY)
    assert decision.desired == 5
    assert "capped at the maximum of 5" in decision.reason


def test_min_is_kept_warm_without_work() -> None:
    assert decide(target(low=2), NOW, POLICY).desired == 2
    idle = target(instance(since=3600), instance(since=3600), low=2)
    assert decide(idle, NOW, POLICY).desired == 2


def test_scale_to_zero_only_after_the_idle_timeout() -> None:
    fresh = target(instance(since=10), quiet=10)
    early = decide(fresh, NOW, POLICY)
    assert early.desired == 1
    assert early.recheck_at == NOW + timedelta(seconds=20)  # exactly when it falls due
    due = decide(target(instance(since=30), quiet=30), NOW, POLICY)
    assert due.desired == 0
    assert due.reason == "idle for 30.0s: scale to 0"


def test_never_to_zero_with_work_queued_or_running() -> None:
    running = target(instance("processing", since=3600, busy=1), inflight=1, quiet=3600)
    assert decide(running, NOW, POLICY).desired == 1
    queued = target(instance(since=3600), queued=1, quiet=3600)
    assert decide(queued, NOW, POLICY).desired == 1


def test_never_down_while_an_instance_is_still_setting_up() -> None:
    state = target(instance(since=3600), instance("setting_up", since=3600), quiet=3600)
    decision = decide(state, NOW, POLICY)
    assert decision.desired == 2
    assert "still starting" in decision.reason


def test_scale_down_under_load_waits_for_the_stable_window() -> None:
    busy = [instance("processing", busy=1) for _ in range(4)]
    state = target(*busy[:1], *[instance("idle", since=s) for s in (1, 2, 3)], inflight=1)
    # Four were needed 30 s ago: the window still remembers it.
    recent = [Sample(NOW - timedelta(seconds=s), n) for s, n in ((70, 4), (30, 4), (5, 1))]
    assert decide(state, NOW, POLICY, recent).desired == 4
    # A full window of needing one: down to one (the others drain).
    calm = [Sample(NOW - timedelta(seconds=s), 1) for s in (70, 40, 10)]
    decision = decide(state, NOW, POLICY, calm)
    assert decision.desired == 1
    assert decision.reason == "load fell: at most 1 needed over the last 60s"
    # A history shorter than the window never scales down.
    short = [Sample(NOW - timedelta(seconds=10), 1)]
    assert decide(state, NOW, POLICY, short).desired == 4


def test_a_rollout_asks_for_as_many_new_instances_as_old_ones_serve() -> None:
    state = target(
        instance(release=1), instance("processing", release=1, busy=1), inflight=1, release=2
    )
    decision = decide(state, NOW, POLICY)
    assert decision.desired == 2
    assert decision.reason.startswith("rollout")


def test_lowering_max_below_the_current_count_scales_down() -> None:
    state = target(instance(), instance(), instance(), high=1)
    assert decide(state, NOW, POLICY).desired == 1


def test_an_instance_waiting_for_capacity_does_not_hold_off_scale_down() -> None:
    state = target(instance(since=3600), instance("pending", since=1), quiet=3600)
    decision = decide(state, NOW, POLICY)
    assert decision.desired == 0
