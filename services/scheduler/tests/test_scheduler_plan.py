"""The reconcile plan: starts, drains and drops for a target, as pure decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cogplane.scheduler.work.plan import Member, plan, restart_delay

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def member(
    id: str,
    state: str = "idle",
    release: int = 1,
    busy: int = 0,
    age: float = 0,
    placed: bool = True,
) -> Member:
    return Member(id, state, release, busy, T0 - timedelta(seconds=age), placed=placed)


def test_scale_up_starts_the_missing_instances() -> None:
    assert plan([member("a")], release=1, desired=3, min_instances=0, max_instances=5).start == 2


def test_desired_is_bounded_by_min_and_max() -> None:
    assert plan([], release=1, desired=0, min_instances=2, max_instances=5).start == 2
    assert plan([], release=1, desired=9, min_instances=0, max_instances=3).start == 3


def test_scale_down_drains_the_longest_idle_first_then_the_least_busy() -> None:
    members = [
        member("busy2", "processing", busy=2),
        member("idle-new", age=1),
        member("idle-old", age=100),
        member("busy1", "processing", busy=1),
    ]
    result = plan(members, release=1, desired=1, min_instances=0, max_instances=5)
    assert [i for i, _ in result.drain] == ["idle-old", "idle-new", "busy1"]
    assert all(reason == "scaled down to 1" for _, reason in result.drain)
    assert result.start == 0


def test_instances_still_starting_are_never_stopped_by_scale_down() -> None:
    members = [member("boot", "booting"), member("setup", "setting_up"), member("idle")]
    result = plan(members, release=1, desired=0, min_instances=0, max_instances=5)
    assert [i for i, _ in result.drain] == ["idle"]


def test_unplaced_instances_are_dropped_first_not_drained() -> None:
    members = [member("waiting", "pending", placed=False), member("idle")]
    result = plan(members, release=1, desired=1, min_instances=0, max_instances=5)
    assert result.drop == ["waiting"]
    assert result.drain == []


def test_rollout_keeps_old_instances_until_new_ones_are_ready() -> None:
    old = [member("old1", release=1), member("old2", "processing", release=1, busy=1)]
    # The new release's instances are starting: every old one keeps serving.
    starting = [member("new1", "setting_up", release=2), member("new2", "booting", release=2)]
    result = plan([*old, *starting], release=2, desired=2, min_instances=0, max_instances=5)
    assert result.drain == []
    assert result.start == 0
    # One new instance ready: one old one (the idle one) retires.
    one_ready = [member("new1", release=2), member("new2", "booting", release=2)]
    result = plan([*old, *one_ready], release=2, desired=2, min_instances=0, max_instances=5)
    assert result.drain == [("old1", "replaced by release 2")]
    # Both ready: the other old one drains too (it finishes its prediction first).
    ready = [member("new1", release=2), member("new2", release=2)]
    result = plan([*old, *ready], release=2, desired=2, min_instances=0, max_instances=5)
    assert sorted(i for i, _ in result.drain) == ["old1", "old2"]


def test_rollout_starts_the_new_release_and_stops_old_starting_instances() -> None:
    members = [member("old", release=1), member("old-boot", "booting", release=1)]
    result = plan(members, release=2, desired=1, min_instances=0, max_instances=5)
    assert result.start == 1
    assert result.drain == [("old-boot", "replaced by release 2")]


def test_rollout_to_zero_drains_old_instances_at_once() -> None:
    result = plan(
        [member("old", release=1)], release=2, desired=0, min_instances=0, max_instances=5
    )
    assert result.drain == [("old", "replaced by release 2")]
    assert result.start == 0


def test_a_deleted_target_stops_everything() -> None:
    members = [
        member("a", "setting_up"),
        member("b", "processing", busy=1),
        member("c", "pending", placed=False),
    ]
    result = plan(members, release=1, desired=3, min_instances=1, max_instances=5, deleted=True)
    assert sorted(i for i, _ in result.drain) == ["a", "b"]
    assert result.drop == ["c"]
    assert result.start == 0


def test_a_release_that_keeps_failing_is_restarted_with_growing_delays() -> None:
    def failed(n: int) -> list[datetime]:
        return [T0 - timedelta(seconds=i) for i in range(n)]

    assert restart_delay(failed(0)) == timedelta(0)
    assert restart_delay(failed(2)) == timedelta(0)
    assert restart_delay(failed(3)) == timedelta(seconds=5)
    assert restart_delay(failed(4)) == timedelta(seconds=10)
    assert restart_delay(failed(30)) == timedelta(minutes=5)
