"""A short-lived cache of verified callers, so that most requests skip the registry round trip.

Correctness does not rest on the expiry alone: the registry broadcasts every revocation and
membership change and the cache drops what they touch; when the NATS connection drops (so a
broadcast may be missed) the cache empties; and a verification that raced with a change is not
cached (the generation counter).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

from cogplane.common.contracts.accounts import AccountsChanged, Caller


class CallerCache:
    """Verified callers by token digest, least recently used first out.

    Args:
        ttl: Seconds an entry stays valid; 0 disables the cache.
        max_entries: Bound on the number of tokens remembered.
    """

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.generation = 0
        self._entries: OrderedDict[str, tuple[float, Caller]] = OrderedDict()

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> Caller | None:
        """The cached caller of ``token``, if still valid."""
        key = self._key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, caller = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return caller

    def put(self, token: str, caller: Caller, generation: int) -> None:
        """Remember ``caller``, unless a change arrived since ``generation`` was read."""
        if self.ttl <= 0 or generation != self.generation:
            return
        self._entries[self._key(token)] = (time.monotonic() + self.ttl, caller)
        self._entries.move_to_end(self._key(token))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, notice: AccountsChanged) -> None:
        """Drop every caller the notice touches."""
        self.generation += 1
        tokens, accounts = set(notice.token_ids), set(notice.account_ids)
        stale = [
            key
            for key, (_, caller) in self._entries.items()
            if caller.token_id in tokens or caller.account.id in accounts
        ]
        for key in stale:
            del self._entries[key]

    def clear(self) -> None:
        """Drop everything (the connection dropped: a notice may have been missed)."""
        self.generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
