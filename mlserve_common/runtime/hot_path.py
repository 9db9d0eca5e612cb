"""The routes that carry the load, answered without FastAPI's routing and dependencies.

FastAPI resolves dependencies, builds a route context and wraps every call in several
layers; for a cache hit that costs more than the work itself (see bench/results/
profile_*.md). `HotPath` is a pure ASGI middleware that sends the few hot routes straight
to their endpoint, a plain `async def (request, **path_params) -> Response`. The same
endpoints stay declared on the FastAPI router, so the OpenAPI schema and any request that
does not match here (another method, say) behave as before. Errors use the one envelope.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mlserve_common.runtime.errors import MLServeError, error_response

Endpoint = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class HotRoute:
    """`POST` to a path template such as `/v1/models/{model_name}/predict`."""

    path: str
    endpoint: Endpoint
    internal: bool = False
    """Called by the gateway only (a batch of images, say): `declare_internal` puts it in the
    app's route table, hidden from the OpenAPI schema, instead of a declaration beside it."""

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path))


def declare_internal(router: APIRouter | FastAPI, routes: list[HotRoute]) -> None:
    """Declare each internal route of `routes` on `router` as well, hidden from the schema:
    the app's table then lists every route it answers (what the route tests enumerate), and
    a request HotPath does not take gets FastAPI's own answer (405 for another method)."""
    for route in routes:
        if route.internal:
            router.add_api_route(
                route.path, route.endpoint, methods=["POST"], include_in_schema=False
            )


class HotPath:
    def __init__(self, app: ASGIApp, routes: list[HotRoute]) -> None:
        self.app = app
        self.routes = [(route.pattern, route.endpoint) for route in routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for pattern, endpoint in self.routes:
                match = pattern.fullmatch(scope["path"])
                if match is not None:
                    request = Request(scope, receive)
                    try:
                        response = await endpoint(request, **match.groupdict())
                    except MLServeError as exc:
                        response = error_response(request, exc)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
