"""Repeats answered by the gateway from the cache, in front of a real model_api and Redis:
the answer model_api would give, without a request reaching model_api; everything the
gateway cannot vouch for goes to model_api."""

from __future__ import annotations

import httpx
import orjson
import redis

from harness.images import drawn_digit_seven, encode
from harness.metrics import metric
from harness.services import ServiceProcess
from mlserve_common.wire.cache_keys import cache_key, image_sha256, model_digest_key
from tests.integration.web_api.in_process import gateway

SUCCESS = "mlserve_request_success_total"


def answered_by_model_api(model_api: ServiceProcess) -> float:
    """Predictions model_api has answered, over all its workers."""
    base = model_api.url
    return metric(httpx.get(f"{base}/metrics").text, SUCCESS, model="mnist")


def lookups(client, result: str) -> float:
    text = client.get("/metrics").text
    return metric(text, "mlserve_gateway_cache_lookups_total", model="mnist", result=result)


def a_new_image(seed: int) -> bytes:
    """A seven no other test sent (so its first request is a miss)."""
    return encode(drawn_digit_seven(200 + seed))


def without_timings(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "timings"}


def test_a_repeat_is_answered_by_the_gateway_as_model_api_would(
    model_api: ServiceProcess,
) -> None:
    image = a_new_image(1)
    base = model_api.url
    with gateway(model_api) as client:
        first = client.post("/predict", files={"file": ("seven.png", image)})
        assert first.status_code == 200 and first.json()["cached"] is False
        before, hits_before = answered_by_model_api(model_api), lookups(client, "hit")
        again = client.post("/predict", files={"file": ("other-name.png", image)})
        raw = client.post("/v1/models/mnist/predict", content=image)
        assert again.status_code == raw.status_code == 200
        assert answered_by_model_api(model_api) == before  # neither reached model_api
        assert lookups(client, "hit") == hits_before + 2
    direct = httpx.post(
        f"{base}/v1/models/mnist/predict", params={"app_type": "cli"}, content=image
    )
    assert direct.json()["cached"] is True
    for served in (again, raw):
        assert without_timings(served.json()) == without_timings(direct.json())
        assert served.json()["label"] == first.json()["label"] == "7"
        timings = served.json()["timings"]
        assert timings["cache_lookup_ms"] > 0 and timings["total_ms"] >= timings["cache_lookup_ms"]
        assert timings["inference_ms"] == timings["decode_ms"] == 0


def test_until_it_has_seen_the_model_digest_the_gateway_asks_model_api(
    model_api: ServiceProcess,
) -> None:
    image = a_new_image(2)
    with gateway(model_api) as client:
        client.post("/predict", content=image)
    with gateway(model_api) as fresh:  # knows no digest yet
        before = answered_by_model_api(model_api)
        first = fresh.post("/predict", content=image)
        assert first.json()["cached"] is True  # model_api's hit
        assert answered_by_model_api(model_api) == before + 1
        fresh.post("/predict", content=image)
        assert answered_by_model_api(model_api) == before + 1  # the gateway's hit


def test_an_entry_of_a_digest_redis_no_longer_names_is_never_answered(
    model_api: ServiceProcess,
) -> None:
    """Every lookup reads the model's current digest with the entry (one MGET): once Redis
    names another digest (a reload elsewhere wrote it), the gateway answers nothing from the
    entries of the one it knew, takes the new digest, and sends the request on."""
    image = a_new_image(3)
    store = redis.Redis.from_url(model_api.env["MLSERVE_REDIS_URL"])
    digest_key = model_digest_key("mnist")
    with gateway(model_api) as client:
        digest = client.post("/predict", content=image).json()["digest"]
        assert store.get(digest_key) == digest.encode()  # written by model_api at start
        before = answered_by_model_api(model_api)
        assert client.post("/predict", content=image).json()["cached"] is True
        assert answered_by_model_api(model_api) == before  # the gateway's hit
        try:
            store.set(digest_key, "f" * 64)  # as a reload to another model would
            stale = lookups(client, "stale")
            answer = client.post("/predict", content=image)
            assert answer.status_code == 200 and answer.json()["digest"] == digest
            assert answered_by_model_api(model_api) == before + 1  # not answered here
            assert lookups(client, "stale") == stale + 1
            client.post("/predict", content=image)  # now keyed by the new digest: a miss
            assert answered_by_model_api(model_api) == before + 2
            store.delete(digest_key)  # lost (an eviction): nothing can be vouched for
            client.post("/predict", content=image)  # ...and model_api's answer teaches
            assert answered_by_model_api(model_api) == before + 3  # the digest back
        finally:
            store.set(digest_key, digest)
        assert client.post("/predict", content=image).json()["cached"] is True
        assert answered_by_model_api(model_api) == before + 3  # the gateway's hit again


def test_an_unreadable_entry_goes_to_model_api_which_rewrites_it(
    model_api: ServiceProcess,
) -> None:
    image = a_new_image(4)
    store = redis.Redis.from_url(model_api.env["MLSERVE_REDIS_URL"])
    with gateway(model_api) as client:
        digest = client.post("/predict", content=image).json()["digest"]
        key = cache_key("cli", "mnist", digest, image_sha256(image))
        foreign = orjson.dumps({"model": "mnist", "digest": "not-this-one", "label": "3"})
        for bad in (b"\x80not json", b'{"model": "mnist"', foreign):
            store.set(key, bad)
            before, misses = answered_by_model_api(model_api), lookups(client, "miss")
            answer = client.post("/predict", content=image)
            assert answer.status_code == 200 and answer.json()["label"] == "7"
            assert answer.json()["cached"] is False  # model_api inferred it again...
            assert answered_by_model_api(model_api) == before + 1
            assert lookups(client, "miss") == misses + 1
            assert orjson.loads(store.get(key))["digest"] == digest  # ...and rewrote it


def test_a_gateway_that_cannot_read_redis_forwards_everything(
    model_api: ServiceProcess,
) -> None:
    image = a_new_image(5)
    with gateway(model_api, redis_url="redis://127.0.0.1:1/0", redis_retry_seconds=60) as client:
        answers = [client.post("/predict", content=image) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.json()["cached"] for a in answers] == [False, True, True]  # model_api's cache
        assert lookups(client, "error") >= 1 and lookups(client, "skipped") >= 1


def test_a_malformed_upload_gets_the_same_answer_at_the_gateway(
    model_api: ServiceProcess,
) -> None:
    body = b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc'
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    base = model_api.url
    direct = httpx.post(f"{base}/v1/models/mnist/predict", content=body, headers=headers)
    with gateway(model_api) as client:
        via_gateway = client.post("/predict", content=body, headers=headers)
        text_only = b'--xyz\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n--xyz--\r\n'
        no_file = client.post("/predict", content=text_only, headers=headers)
    assert via_gateway.status_code == direct.status_code == 400
    assert via_gateway.json()["error"] == direct.json()["error"]
    assert no_file.status_code == 400 and "no file" in no_file.json()["error"]


def test_while_only_new_images_come_the_gateway_samples_its_lookups(
    model_api: ServiceProcess,
) -> None:
    """After `cache_bypass_after_misses` lookups in a row found nothing, one request in 16
    is looked up; a repeat (answered by model_api from its cache) brings every lookup back,
    and nothing is answered wrong meanwhile."""
    images = [a_new_image(100 + seed) for seed in range(5 + 32)]
    with gateway(model_api, cache_bypass_after_misses=5) as client:
        client.post("/predict", content=a_new_image(99))  # learns the model's digest
        misses, bypassed = lookups(client, "miss"), lookups(client, "bypassed")
        for image in images:
            answer = client.post("/predict", content=image)
            assert answer.status_code == 200 and answer.json()["cached"] is False
        # 5 misses reach the bypass; of the next 32 requests, 2 are looked up.
        assert lookups(client, "miss") == misses + 5 + 2
        assert lookups(client, "bypassed") == bypassed + 30
        before, hits = answered_by_model_api(model_api), lookups(client, "hit")
        repeat = images[0]
        first = client.post("/predict", content=repeat)  # bypassed: model_api's own hit
        assert first.json()["cached"] is True and answered_by_model_api(model_api) == before + 1
        again = client.post("/predict", content=repeat)  # looked up again: the gateway's hit
        assert again.json()["cached"] is True and answered_by_model_api(model_api) == before + 1
        assert lookups(client, "hit") == hits + 1
        assert without_timings(again.json()) == without_timings(first.json())


def test_with_the_bypass_off_every_request_is_looked_up(model_api: ServiceProcess) -> None:
    with gateway(model_api, cache_bypass_after_misses=0) as client:
        client.post("/predict", content=a_new_image(150))
        misses, bypassed = lookups(client, "miss"), lookups(client, "bypassed")
        for seed in range(40):
            client.post("/predict", content=a_new_image(151 + seed))
        assert lookups(client, "miss") == misses + 40
        assert lookups(client, "bypassed") == bypassed
