"""API tokens: ``r8_`` and 37 random letters and digits (40 characters, as Replicate's)."""

from __future__ import annotations

import hashlib
import secrets
import string

PREFIX = "r8_"
_ALPHABET = string.ascii_letters + string.digits
_RANDOM_LENGTH = 37


def generate() -> str:
    """A new random token."""
    return PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))


def digest(token: str) -> str:
    """What is stored: the token's SHA-256 (220 random bits need no salt)."""
    return hashlib.sha256(token.encode()).hexdigest()


def hint(token: str) -> str:
    """The first characters, shown in token lists so people can tell them apart."""
    return token[:7]
