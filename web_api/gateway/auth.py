"""Optional API key on the public port: when MLSERVE_API_KEY is set, every route but
health and the docs needs it, as `Authorization: Bearer KEY` or `X-API-Key: KEY`."""

from __future__ import annotations

import hmac

from fastapi import Request

from web_api.gateway.errors import UnauthorizedError


def presented_key(request: Request) -> str:
    """The key the client sent, from either header ('' when none)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    return request.headers.get("x-api-key", "")


async def require_api_key(request: Request) -> None:
    """401 unless no key is configured or the right one was presented (constant time)."""
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    if not hmac.compare_digest(
        presented_key(request).encode(), expected.get_secret_value().encode()
    ):
        raise UnauthorizedError(
            "missing or wrong API key: send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
        )
