"""Browser sessions: a signed, HttpOnly cookie that carries the user's API token.

The gateway keeps nothing per session, so any replica serves any request: the cookie holds the
token the user signed in with (verified like any Bearer token on each use, so revoking the token
ends the session), signed with a key derived from ``files_signing_key`` (the same on every
replica). The cookie is HttpOnly (page scripts never see the token) and SameSite=Lax.

State-changing requests made with the cookie need the session's CSRF token: in a form field for
the web app's own forms, or in the ``X-CSRF-Token`` header for the page scripts that call the
``/v1`` API. The CSRF token is an HMAC of the cookie, so it is unguessable without it and changes
with every sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from pydantic import SecretStr

COOKIE = "cogplane_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
MAX_AGE = 7 * 24 * 3600
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the token it uses and when it signed in."""

    token: str
    username: str
    issued_at: int


class SessionCodec:
    """Signs and reads session cookies, and derives their CSRF tokens."""

    def __init__(self, key: SecretStr) -> None:
        base = key.get_secret_value().encode()
        self._key = hmac.new(base, b"cogplane-web-session", hashlib.sha256).digest()

    def _mac(self, payload: str, purpose: bytes) -> str:
        return _b64(hmac.new(self._key, purpose + payload.encode(), hashlib.sha256).digest())

    def encode(self, token: str, username: str, now: float | None = None) -> str:
        """The cookie value of a new session."""
        body = {"t": token, "u": username, "i": int(time.time() if now is None else now)}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload, b'session:')}"

    def decode(self, cookie: str, now: float | None = None) -> Session | None:
        """The session of a cookie value, or None if it is forged, malformed or expired."""
        payload, _, signature = cookie.partition(".")
        if not payload or not signature or len(cookie) > 4096:
            return None
        if not hmac.compare_digest(signature, self._mac(payload, b"session:")):
            return None
        try:
            body = json.loads(_unb64(payload))
            session = Session(str(body["t"]), str(body["u"]), int(body["i"]))
        except (ValueError, KeyError, TypeError):
            return None
        if (time.time() if now is None else now) - session.issued_at > MAX_AGE:
            return None
        return session

    def csrf(self, cookie: str) -> str:
        """The CSRF token that goes with a session cookie."""
        return self._mac(cookie, b"csrf:")

    def csrf_valid(self, cookie: str, given: str | None) -> bool:
        """Whether ``given`` is the CSRF token of ``cookie`` (constant time)."""
        return given is not None and hmac.compare_digest(self.csrf(cookie), given)
