"""Build output, sent to the registry in ordered chunks while the build runs."""

from __future__ import annotations

import asyncio
import contextlib

from cogplane.common.bus import Bus
from cogplane.common.contracts.models import BuildLogged

FLUSH_INTERVAL = 0.3
FLUSH_BYTES = 16 * 1024


class BuildLog:
    """Buffers output and publishes it as BuildLogged events numbered from 0."""

    def __init__(self, bus: Bus, build_id: str) -> None:
        self.bus = bus
        self.build_id = build_id
        self.chunks = 0
        self._buffer: list[str] = []
        self._size = 0
        self._lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BuildLog:
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.flush()

    async def write(self, text: str) -> None:
        """Add output; large amounts are sent at once, the rest within FLUSH_INTERVAL."""
        self._buffer.append(text)
        self._size += len(text)
        if self._size >= FLUSH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        """Send what is buffered as the next chunk."""
        async with self._lock:
            if not self._buffer:
                return
            text, self._buffer, self._size = "".join(self._buffer), [], 0
            await self.bus.publish(BuildLogged(build_id=self.build_id, seq=self.chunks, text=text))
            self.chunks += 1

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            await self.flush()
