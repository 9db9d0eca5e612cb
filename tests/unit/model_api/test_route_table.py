"""model_api has no API key: it is reachable only on the stack's private network (Compose
publishes no port of it; Kubernetes lets only web_api in, deploy/k8s/base/network-policies.yaml),
and the gateway checks the key of every request it passes on. Every route of model_api is
still on one named side, so a new one cannot be added without saying who calls it."""

from __future__ import annotations

from harness.route_table import method_paths
from model_api import routes, v2_routes
from model_api.config import Settings
from model_api.main import create_app

HOT_ROUTES = routes.HOT_ROUTES + v2_routes.HOT_ROUTES

PROBES_AND_DOCS = {
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
    ("GET", "/metrics"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/openapi.json"),
}
"""Called by orchestrators, Prometheus and people reading the API."""

THROUGH_THE_GATEWAY = {
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model_name}"),
    ("POST", "/v1/models/{model_name}/predict"),
    ("GET", "/v1/models/{model_name}/predictions/{sha256}"),
    ("HEAD", "/v1/models/{model_name}/predictions/{sha256}"),
    ("GET", "/v2"),
    ("GET", "/v2/"),
    ("GET", "/v2/models/{model_name}"),
    ("GET", "/v2/models/{model_name}/versions/{version}"),
    ("GET", "/v2/models/{model_name}/ready"),
    ("GET", "/v2/models/{model_name}/versions/{version}/ready"),
    ("POST", "/v2/models/{model_name}/infer"),
    ("POST", "/v2/models/{model_name}/versions/{version}/infer"),
    ("POST", "/v2/repository/index"),
    ("POST", "/v2/repository/models/{model_name}/load"),
    ("POST", "/v2/repository/models/{model_name}/unload"),
}
"""Public API: the gateway passes them on behind its API key."""

GATEWAY_ONLY = {
    ("POST", "/v1/models/{model_name}/predict/batch"),
    ("POST", "/v1/models/{model_name}/infer/batch"),
    ("POST", "/v1/models/{model_name}/versions/{version}/infer/batch"),
}
"""The gateway's own calls (several images or V2 requests in one): hidden from the schema."""


def test_every_route_is_on_one_named_side() -> None:
    app = create_app(Settings(model_name="mnist", redis_url=""))
    table = method_paths(app, HOT_ROUTES)
    sides = [PROBES_AND_DOCS, THROUGH_THE_GATEWAY, GATEWAY_ONLY]
    listed = set().union(*sides)
    assert sum(len(side) for side in sides) == len(listed), "a route on two sides"
    assert table - listed == set(), "routes on no side: add them to one"
    assert listed - table == set(), "listed routes model_api no longer has"


def test_the_gateway_only_routes_are_hidden_from_the_schema() -> None:
    app = create_app(Settings(model_name="mnist", redis_url=""))
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert documented & GATEWAY_ONLY == set()
    assert {("POST", "/v1/models/{model_name}/predict")} <= documented
