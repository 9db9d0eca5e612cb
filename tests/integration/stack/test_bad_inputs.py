"""Every bad-day input through the real gateway and model_api, for both models.

Each gets its documented answer; none is a 5xx; the services stay up; nothing bad enters
the cache.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from harness.bad_inputs import BAD, CASES, Case
from harness.images import drawn_digit_seven, encode
from harness.redis_server import RedisServer
from harness.services import running_services


@pytest.fixture(scope="module", params=["mnist", "leukemia"])
def stack(request, tmp_path_factory) -> Iterator[tuple[str, RedisServer, str]]:
    with running_services(tmp_path_factory.mktemp(request.param), request.param) as services:
        yield services.url, services.redis, request.param


@pytest.mark.parametrize("case", CASES, ids=[c.title for c in CASES])
def test_case_gets_its_documented_answer(stack, case: Case) -> None:
    url, _, model = stack
    if case.only_for not in (None, model):
        pytest.skip(f"{model}'s config does not ask for this answer")
    response = case.send(url)
    assert response.status_code == case.status, response.text
    body = response.json()
    if case.code:
        assert body["code"] == case.code
        assert body["error"] and "Traceback" not in body["error"] and "/" not in body["error"][:1]
        assert response.headers["x-request-id"] == body["request_id"]
    else:
        assert body["label"] in body["probabilities"]
    assert httpx.get(url + "/health", timeout=10).status_code == 200  # still up


def test_bad_inputs_leave_nothing_in_the_cache(stack) -> None:
    url, redis_server, model = stack
    store = redis.Redis.from_url(redis_server.url)
    before = store.dbsize()
    for case in BAD:
        if case.only_for in (None, model):
            assert case.send(url).status_code == case.status
    assert store.dbsize() == before
    assert (
        httpx.post(url + "/predict", content=encode(drawn_digit_seven(77)), timeout=30).status_code
        == 200
    )
    assert store.dbsize() == before + 1


def test_no_internal_details_leak(stack) -> None:
    url, _, _ = stack
    for case in BAD:
        text = case.send(url).text
        for leak in ("Traceback", "/work", "site-packages", "127.0.0.1", "model_api:8000"):
            assert leak not in text, (case.name, text)
