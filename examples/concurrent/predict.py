"""An async model that serves up to four predictions at once."""

import asyncio

from cog import BaseRunner, Input, concurrent


class Predictor(BaseRunner):
    @concurrent(max=4)
    async def run(
        self,
        seconds: float = Input(description="How long to sleep", default=0.5, ge=0, le=60),
    ) -> str:
        await asyncio.sleep(seconds)
        return f"slept {seconds}"
