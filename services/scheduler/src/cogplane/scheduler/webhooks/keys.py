"""Signing secrets and keys, created on first use and then kept in memory (they never change)."""

from __future__ import annotations

import base64

from cogplane.common.db import Database
from cogplane.common.errors import Unavailable
from cogplane.scheduler.webhooks.repository import KeyRepository
from cogplane.scheduler.webhooks.signing import new_key, new_secret

STREAM_KEY = "streams"


class Keys:
    """Webhook secrets by account, and the key of stream URL tokens."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._secrets: dict[str, str] = {}
        self._stream_key: bytes | None = None

    async def load(self) -> None:
        """Read (or create) the stream key; call once before serving."""
        async with self.db.unit_of_work() as session:
            key = await KeyRepository(session).signing_key(STREAM_KEY, new_key())
        self._stream_key = base64.b64decode(key)

    @property
    def stream_key(self) -> bytes:
        """The key stream URL tokens are signed with."""
        if self._stream_key is None:
            raise Unavailable("The stream key is not loaded yet")
        return self._stream_key

    async def webhook_secret(self, account_id: str) -> str:
        """The account's webhook signing secret (created the first time it is asked for)."""
        if (secret := self._secrets.get(account_id)) is not None:
            return secret
        async with self.db.unit_of_work() as session:
            secret = await KeyRepository(session).webhook_secret(account_id, new_secret())
        self._secrets[account_id] = secret
        return secret
