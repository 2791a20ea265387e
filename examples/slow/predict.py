"""Sleeps for a while, logging as it goes: for cancellation and timeout tests."""

import time

from cog import BaseRunner, CancelationException, Input


class Predictor(BaseRunner):
    def run(
        self,
        seconds: float = Input(description="How long to sleep", default=5, ge=0, le=3600),
    ) -> str:
        deadline = time.monotonic() + seconds
        tick = 0
        try:
            while (left := deadline - time.monotonic()) > 0:
                print(f"tick {tick}")
                tick += 1
                time.sleep(min(1.0, left))
        except CancelationException:
            print("canceled, cleaning up")
            raise
        return f"slept {seconds}"
