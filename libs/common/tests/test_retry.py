from cogplane.common.retry import RetryPolicy


def test_delays_grow_exponentially_up_to_the_maximum() -> None:
    policy = RetryPolicy(initial=0.1, maximum=1.0, multiplier=2.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_jitter_stays_within_its_fraction() -> None:
    policy = RetryPolicy(initial=1.0, maximum=1.0, jitter=0.1)
    delays = [policy.delay(3) for _ in range(200)]
    assert all(0.9 <= d <= 1.1 for d in delays)
    assert len(set(delays)) > 1
