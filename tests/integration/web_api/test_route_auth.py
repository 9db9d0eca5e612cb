"""Every route of the gateway, with an API key configured: a wrong key, or none, gets 401,
unless the route is on the short list of open ones. The routes are enumerated from the app
itself (FastAPI's table and HotPath's), so a new route fails here until it is put on one
side: OPEN, or PROBES with the concrete requests that must be refused."""

from __future__ import annotations

import pytest

from harness.images import samples
from harness.route_table import method_paths
from harness.services import ServiceProcess
from tests.integration.web_api.in_process import gateway
from web_api.gateway.routes import HOT_ROUTES

KEY = "the-right-key"
SHA = "0" * 64

OPEN = {
    ("GET", "/"): "redirects to the docs",
    ("GET", "/docs"): "the API's documentation",
    ("GET", "/docs/oauth2-redirect"): "part of the documentation page",
    ("GET", "/redoc"): "the API's documentation",
    ("GET", "/openapi.json"): "the API's schema",
    ("GET", "/health"): "orchestrators probe it without a key",
    ("GET", "/health/live"): "orchestrators probe it without a key",
    ("GET", "/v2"): "V2 server metadata, open as in KServe and Triton",
    ("GET", "/v2/"): "the same, at the path the protocol's schema names",
    ("GET", "/v2/health/live"): "V2 health, open as in KServe and Triton",
    ("GET", "/v2/health/ready"): "V2 health, open as in KServe and Triton",
}

PROBES = {
    ("POST", "/predict"): ["/predict"],
    ("POST", "/v1/models/{model_name}/predict"): ["/v1/models/mnist/predict"],
    ("GET", "/v1/models"): ["/v1/models"],
    ("GET", "/v1/models/{model_name}"): ["/v1/models/mnist"],
    ("GET", "/v1/models/{model_name}/predictions/{sha256}"): [
        f"/v1/models/mnist/predictions/{SHA}"
    ],
    ("HEAD", "/v1/models/{model_name}/predictions/{sha256}"): [
        f"/v1/models/mnist/predictions/{SHA}"
    ],
    ("GET", "/metrics"): ["/metrics"],
    ("GET", "/v2/{route:path}"): [
        "/v2/models/mnist",
        "/v2/models/mnist/ready",
        "/v2/models/mnist/versions/1",
        "/v2/models/mnist/stats",
    ],
    ("POST", "/v2/{route:path}"): [
        "/v2/models/mnist/infer",
        "/v2/models/mnist/versions/1/infer",
        "/v2/repository/index",
        "/v2/repository/models/mnist/load",
        "/v2/repository/models/mnist/unload",
    ],
    ("POST", "/v2/models/{model_name}/infer"): ["/v2/models/mnist/infer"],
    ("POST", "/v2/models/{model_name}/versions/{version}/infer"): [
        "/v2/models/mnist/versions/1/infer"
    ],
}


def test_every_route_is_either_open_or_checked(model_api: ServiceProcess) -> None:
    with gateway(model_api, api_key=KEY) as client:
        table = method_paths(client.app, HOT_ROUTES)
    unknown = table - set(OPEN) - set(PROBES)
    assert not unknown, f"routes on neither list (add them to OPEN or PROBES): {unknown}"
    gone = (set(OPEN) | set(PROBES)) - table
    assert not gone, f"listed routes the gateway no longer has: {gone}"


@pytest.mark.parametrize("presented", [None, "a-wrong-key", KEY[:-1]])
def test_a_missing_or_wrong_key_is_refused_on_every_checked_route(
    model_api: ServiceProcess, presented: str | None
) -> None:
    image = samples("mnist")[0][0].read_bytes()
    headers = {} if presented is None else {"x-api-key": presented}
    refused = []
    with gateway(model_api, api_key=KEY) as client:
        for (method, _), paths in PROBES.items():
            for path in paths:
                body = image if method == "POST" else None
                answer = client.request(method, path, content=body, headers=headers)
                if answer.status_code != 401:
                    refused.append((method, path, answer.status_code))
                elif method != "HEAD":
                    assert answer.json()["code"] == "unauthorized"
    assert not refused, f"answered without the right key: {refused}"


def test_the_open_routes_answer_without_a_key(model_api: ServiceProcess) -> None:
    with gateway(model_api, api_key=KEY) as client:
        for method, path in OPEN:
            answer = client.request(method, path, follow_redirects=False)
            assert answer.status_code in (200, 307), (method, path, answer.status_code)


def test_the_right_key_opens_every_checked_route(model_api: ServiceProcess) -> None:
    """Not 401 with the key (whatever the route then makes of the request), as a bearer
    token too."""
    image = samples("mnist")[0][0].read_bytes()
    with gateway(model_api, api_key=KEY) as client:
        for (method, _), paths in PROBES.items():
            for path in paths:
                body = image if method == "POST" else None
                for headers in ({"x-api-key": KEY}, {"authorization": f"Bearer {KEY}"}):
                    answer = client.request(method, path, content=body, headers=headers)
                    assert answer.status_code != 401, (method, path)
