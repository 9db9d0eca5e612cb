"""Optional API key on the public ports: when MLSERVE_API_KEY is set, every route but
health and the docs needs it, as `Authorization: Bearer KEY` or `X-API-Key: KEY` (HTTP
headers, or the same names in gRPC metadata)."""

from __future__ import annotations

import hmac

from fastapi import Request
from pydantic import SecretStr

from web_api.gateway.errors import UnauthorizedError


def presented_key(authorization: str, x_api_key: str) -> str:
    """The key the client sent, from either header ('' when none)."""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    return x_api_key


def check_key(expected: SecretStr | None, presented: str) -> None:
    """401 unless no key is configured or `presented` is it (compared in constant time)."""
    if expected is None:
        return
    if not hmac.compare_digest(presented.encode(), expected.get_secret_value().encode()):
        raise UnauthorizedError(
            "missing or wrong API key: send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
        )


async def require_api_key(request: Request) -> None:
    """The HTTP routes' guard: `check_key` on the request's headers."""
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    headers = request.headers
    check_key(
        expected, presented_key(headers.get("authorization", ""), headers.get("x-api-key", ""))
    )
