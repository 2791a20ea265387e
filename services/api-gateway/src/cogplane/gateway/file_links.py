"""Links to uploaded files: our own file URLs, and signed download links that need no token.

A signed link is Replicate's ``/v1/files/{id}/download?owner=&expiry=&signature=``, where
``signature`` is the base64 HMAC-SHA256 of ``"{owner} {id} {expiry}"`` (``expiry`` in Unix
seconds). Models fetch file inputs without a token, so the gateway hands them such links; an
optional last path segment carries the file's name, because Cog names the downloaded file after
the link's last segment (and models often care about the extension).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from pydantic import SecretStr

from cogplane.common.errors import Forbidden

SIGNATURE_PARAMS = ("owner", "expiry", "signature")
_FILE_PATH = re.compile(r"^(?P<id>[^/]+)(?:/download(?:/[^/]*)?)?$")
INVALID_SIGNATURE = "This download link is not valid"
EXPIRED_SIGNATURE = "This download link has expired"


@dataclass(frozen=True)
class FileLink:
    """One of our file URLs: the file it names, and the query it carries."""

    file_id: str
    query: dict[str, str]

    @property
    def signed(self) -> bool:
        """Whether it carries the parameters of a signed link."""
        return all(name in self.query for name in SIGNATURE_PARAMS)


class FileSigner:
    """Signs and checks download links with one key.

    Args:
        key: The HMAC key (``files_signing_key``), the same on every gateway replica.
    """

    def __init__(self, key: SecretStr) -> None:
        self._key = key.get_secret_value().encode()

    def signature(self, owner: str, file_id: str, expiry: str) -> str:
        """The base64 HMAC-SHA256 of ``"{owner} {file_id} {expiry}"``."""
        message = f"{owner} {file_id} {expiry}".encode()
        return base64.b64encode(hmac.new(self._key, message, hashlib.sha256).digest()).decode()

    def verify(
        self, owner: str, file_id: str, expiry: str, signature: str, now: float | None = None
    ) -> None:
        """Raise Forbidden unless the signature is ours and the link has not expired."""
        given = signature.replace("-", "+").replace("_", "/").encode()
        expected = self.signature(owner, file_id, expiry).encode()
        if not hmac.compare_digest(given, expected) or not expiry.isdigit():
            raise Forbidden(INVALID_SIGNATURE)
        if int(expiry) < (time.time() if now is None else now):
            raise Forbidden(EXPIRED_SIGNATURE)

    def url(
        self,
        base: str,
        owner: str,
        file_id: str,
        expires_in: timedelta,
        *,
        filename: str | None = None,
        now: float | None = None,
    ) -> str:
        """A download link for ``file_id`` that works without a token for ``expires_in``."""
        expiry = str(int((time.time() if now is None else now) + expires_in.total_seconds()))
        query = urlencode(
            {
                "owner": owner,
                "expiry": expiry,
                "signature": self.signature(owner, file_id, expiry),
            }
        )
        tail = f"/{quote(filename, safe='')}" if filename else ""
        return f"{base}/v1/files/{file_id}/download{tail}?{query}"


def signed_download_url(
    base: str,
    owner: str,
    file_id: str,
    expires_in: timedelta,
    *,
    key: SecretStr,
    filename: str | None = None,
) -> str:
    """A download link anyone can use for ``expires_in`` (for example for output files).

    Args:
        base: The gateway's public base URL, without ``/v1``.
        owner: The id of the account that owns the file.
        file_id: The file.
        expires_in: How long the link works.
        key: The gateway's ``files_signing_key``.
        filename: The file's name, appended as the link's last path segment.
    """
    return FileSigner(key).url(base, owner, file_id, expires_in, filename=filename)


def parse_file_link(value: str, base: str) -> FileLink | None:
    """The file a URL of ours names (``{base}/v1/files/{id}``, or its download form).

    None for any other string. A URL under ``{base}/v1/files/`` that names no file raises
    ValueError.
    """
    prefix = f"{base}/v1/files/"
    if not value.startswith(prefix):
        return None
    parts = urlsplit(value)
    path = value[len(prefix) :].split("?", 1)[0].split("#", 1)[0]
    match = _FILE_PATH.match(path)
    if match is None:
        raise ValueError("is not the URL of a file")
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    return FileLink(file_id=match.group("id"), query=query)
