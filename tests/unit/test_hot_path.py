"""HotPath and `declare`: a hot route declared once is answered the same way, behind the same
guard, whether HotPath takes it or FastAPI does; internal routes stay out of the schema."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from mlserve_common.runtime.errors import MLServeError, install_error_handlers
from mlserve_common.runtime.hot_path import HotPath, HotRoute, declare


class Refused(MLServeError):
    status_code = 401
    code = "unauthorized"


async def needs_key(request: Request) -> None:
    if request.headers.get("x-api-key") != "k":
        raise Refused("missing or wrong API key")


async def echo(request: Request, name: str) -> Response:
    """Echo the path's name."""
    return Response(f"{name}:{len(await request.body())}")


ROUTES = [
    HotRoute("/public/{name}", echo, guard=needs_key, openapi={"tags": ["t"]}),
    HotRoute("/internal/{name}", echo, internal=True),
    HotRoute("/elsewhere/{name}", echo),  # declared by whoever owns it: not here
]


def _app(hot: bool) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    if hot:
        app.add_middleware(HotPath, routes=ROUTES)
    declare(app, ROUTES)
    return app


@pytest.mark.parametrize("hot", [True, False], ids=["HotPath", "FastAPI"])
def test_one_declaration_answers_the_same_behind_the_same_guard(hot: bool) -> None:
    client = TestClient(_app(hot))
    refused = client.post("/public/a", content=b"xyz")
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    allowed = client.post("/public/a", content=b"xyz", headers={"x-api-key": "k"})
    assert allowed.status_code == 200 and allowed.text == "a:3"
    assert client.post("/internal/b", content=b"x").text == "b:1"
    assert client.get("/internal/b").status_code == 405  # in the table, for POST
    assert client.post("/elsewhere/c").status_code == (200 if hot else 404)


def test_the_schema_has_the_public_route_and_not_the_internal_one() -> None:
    paths = _app(hot=True).openapi()["paths"]
    assert "/public/{name}" in paths and paths["/public/{name}"]["post"]["tags"] == ["t"]
    assert "/internal/{name}" not in paths and "/elsewhere/{name}" not in paths
