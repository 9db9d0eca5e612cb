"""The routes that carry the load, answered without FastAPI's routing and dependencies.

FastAPI resolves dependencies, builds a route context and wraps every call in several
layers; for a cache hit that costs more than the work itself (see bench/results/
profile_*.md). `HotPath` is a pure ASGI middleware that sends the few hot routes straight
to their endpoint, a plain `async def (request, **path_params) -> Response`, after the
route's guard (the API key). Each route is declared once, as a `HotRoute`; `declare` puts it
in FastAPI's table from that entry (its schema, its guard as a dependency; internal routes
hidden), so the OpenAPI schema and a request that does not match here (another method, say)
get FastAPI's answer. Errors use the one envelope.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import APIRouter, Depends, FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mlserve_common.runtime.errors import MLServeError, error_response

Endpoint = Callable[..., Awaitable[Response]]
Guard = Callable[[Request], Awaitable[None]]


@dataclass(frozen=True)
class HotRoute:
    """`POST` to a path template such as `/v1/models/{model_name}/predict`."""

    path: str
    endpoint: Endpoint
    internal: bool = False
    """Called by the gateway only (a batch of images, say): `declare` puts it in the app's
    route table hidden from the OpenAPI schema, on purpose."""
    guard: Guard | None = None
    """What must pass before the endpoint runs (the API key), on either way in: HotPath and
    FastAPI (as a dependency) both run it, so no endpoint checks it by hand."""
    openapi: dict | None = field(default=None, hash=False, compare=False)
    """FastAPI's route options (tags, openapi_extra...): `declare` puts a public route in the
    app's table and schema from this one declaration. None: declared elsewhere."""

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path))


def declare(router: APIRouter | FastAPI, routes: list[HotRoute]) -> None:
    """Put `routes` in FastAPI's table too, from their one declaration: the internal ones
    hidden from the schema, the public ones (those with `openapi`) in it; each behind its
    guard. A request HotPath does not take (another method) then gets FastAPI's answer."""
    for route in routes:
        if not route.internal and route.openapi is None:
            continue
        router.add_api_route(
            route.path,
            route.endpoint,
            methods=["POST"],
            dependencies=[Depends(route.guard)] if route.guard else None,
            include_in_schema=not route.internal,
            **(route.openapi or {}),
        )


class HotPath:
    def __init__(self, app: ASGIApp, routes: list[HotRoute]) -> None:
        self.app = app
        self.routes = [(route.pattern, route.endpoint, route.guard) for route in routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for pattern, endpoint, guard in self.routes:
                match = pattern.fullmatch(scope["path"])
                if match is not None:
                    request = Request(scope, receive)
                    try:
                        if guard is not None:
                            await guard(request)
                        response = await endpoint(request, **match.groupdict())
                    except MLServeError as exc:
                        response = error_response(request, exc)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
