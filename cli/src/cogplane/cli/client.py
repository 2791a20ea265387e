"""A small HTTP client for the gateway that turns problem+json into readable errors."""

from __future__ import annotations

from typing import Any

import httpx

from cogplane.cli.config import Credentials


class ApiError(Exception):
    """An error answer from the API, or no answer at all."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Api:
    """Calls to ``/v1`` with the caller's token."""

    def __init__(self, credentials: Credentials, timeout: float = 30.0) -> None:
        headers = {"User-Agent": "cogplane-cli"}
        if credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        self._client = httpx.Client(base_url=credentials.url, headers=headers, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """Send a request; return the decoded JSON body (None for 204 and 202 without one)."""
        try:
            response = self._client.request(
                method, path, json=json, content=content, headers=headers, params=params
            )
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach {self._client.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise ApiError(_describe(response), response.status_code)
        return response.json() if response.content else None

    def close(self) -> None:
        self._client.close()


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    title = body.get("title", f"HTTP {response.status_code}")
    detail = str(body.get("detail", "")).strip()
    return f"{title}: {detail}" if detail else title
