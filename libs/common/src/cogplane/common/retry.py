"""The one retry policy type, used at the edges (start-up waits, redelivery, outbound calls)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter.

    Attributes:
        initial: First delay, in seconds.
        maximum: Upper bound of any delay, in seconds.
        multiplier: Growth factor between attempts.
        jitter: Fraction of each delay randomised (0 disables jitter).
    """

    initial: float = 0.2
    maximum: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.1

    def delay(self, attempt: int) -> float:
        """The pause before retry number ``attempt`` (1-based)."""
        base = min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1))
        spread = base * self.jitter
        return max(0.0, base + random.uniform(-spread, spread))  # noqa: S311 - not crypto

    def delays(self) -> Iterator[float]:
        """An endless sequence of pauses."""
        attempt = 1
        while True:
            yield self.delay(attempt)
            attempt += 1
