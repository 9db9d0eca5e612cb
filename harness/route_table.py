"""An app's whole route table, for the tests that hold every route to a rule (the API key at
the gateway, the private network at model_api): FastAPI's routes, included routers opened,
and the `POST` routes HotPath answers."""

from __future__ import annotations

from fastapi import FastAPI

from mlserve_common.runtime.hot_path import HotRoute


def routes(table: list) -> list:
    """The routes of `table`, with included routers opened (FastAPI keeps them whole)."""
    found = []
    for route in table:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            found += routes(inner.routes)
        elif hasattr(route, "path") and hasattr(route, "methods"):
            found.append(route)
        else:
            raise AssertionError(f"a route of an unknown kind: {route!r}")
    return found


def method_paths(app: FastAPI, hot_routes: list[HotRoute]) -> set[tuple[str, str]]:
    """(method, path template) of every route FastAPI or HotPath answers; HEAD only where a
    route is HEAD alone (FastAPI adds HEAD to no GET route by itself)."""
    found = routes(app.routes)
    table = {(m, r.path) for r in found for m in r.methods if m != "HEAD"}
    table |= {("HEAD", r.path) for r in found if r.methods == {"HEAD"}}
    table |= {("POST", r.path) for r in hot_routes}
    return table
