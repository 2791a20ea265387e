"""A short-lived cache of resolved versions and their compiled input validators.

Resolving a version is a registry round trip on every prediction; versions are immutable, so
only what the caller may see can change (a model made private, a new latest version). Entries
live ``ttl`` seconds, which bounds how long such a change takes to show.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from cogplane.common.bus import Bus
from cogplane.common.contracts.models import (
    RESOLVE_VERSION,
    ResolvedVersion,
    ResolveVersion,
    Viewer,
)


class VersionCache:
    """Resolved versions by (viewer, reference), least recently used first out."""

    def __init__(self, ttl: float, max_entries: int = 4096) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, ...], tuple[float, ResolvedVersion]] = OrderedDict()

    async def resolve(self, bus: Bus, viewer: Viewer, ref: str) -> ResolvedVersion:
        """The version ``ref`` names for ``viewer`` (from the registry when not cached)."""
        key = (viewer.account_id, *sorted(viewer.organizations), "|", ref)
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            self._entries.move_to_end(key)
            return entry[1]
        resolved = await bus.request(RESOLVE_VERSION, ResolveVersion(viewer=viewer, ref=ref))
        if self.ttl > 0:
            self._entries[key] = (time.monotonic() + self.ttl, resolved)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return resolved
