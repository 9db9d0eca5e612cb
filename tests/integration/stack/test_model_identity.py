"""A cache that is never stale (issue 26), on real processes: a changed preprocessing
parameter is a new model whose answers are computed afresh, after a restart or a reload; a
reload reaches every worker of every replica on the same Redis, and the gateway, before
its call answers; requests keep being answered while it runs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from harness.images import MODELS_DIR, drawn_digit_seven, encode
from harness.redis_server import RedisServer, free_port
from harness.replicas import copy_models, set_fit_in_box, two_replicas
from harness.services import TEST_WORKERS, ServiceProcess, model_api_process, web_api_process
from model_api.model_identity import folder_digests

SAMPLE = (MODELS_DIR / "mnist" / "samples" / "0_rgb_200.png").read_bytes()


def post(url: str, image: bytes) -> httpx.Response:
    """One prediction on a connection of its own (so that the kernel spreads requests over
    every worker of the service)."""
    return httpx.post(url, content=image, timeout=30)


def new_images(count: int, seed: int) -> list[bytes]:
    return [encode(drawn_digit_seven(120 + seed + i)) for i in range(count)]


def test_a_changed_preprocessing_parameter_is_computed_afresh_after_a_restart(
    tmp_path: Path,
) -> None:
    """The issue's repro: change `fit_in_box.size`, restart, post the same file."""
    models = copy_models(tmp_path)
    redis_server = RedisServer(tmp_path / "redis").start()  # persistent, like db_api
    port, web_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{web_port}/predict"

    def stack() -> tuple[ServiceProcess, ServiceProcess]:
        env = {"MLSERVE_MODELS_DIR": str(models)}
        model_api = model_api_process("mnist", port, redis_server.url, tmp_path / "m.log", **env)
        web_api = web_api_process(
            "mnist", web_port, model_api.url, tmp_path / "w.log", MLSERVE_REDIS_URL=redis_server.url
        )
        return model_api.start(), web_api.start()

    try:
        model_api, web_api = stack()
        before = post(gateway_url, SAMPLE).json()
        assert before["label"] == "0" and post(gateway_url, SAMPLE).json()["cached"] is True
        web_api.stop(), model_api.stop()
        set_fit_in_box(models, 10)
        model_api, web_api = stack()
        after = post(gateway_url, SAMPLE).json()
        fresh = post(gateway_url, SAMPLE + b"\0").json()  # other bytes: surely inferred
        web_api.stop(), model_api.stop()
    finally:
        redis_server.stop()
    assert after["cached"] is False and after["digest"] != before["digest"]
    assert after["version"] == before["version"] == "1"  # the folder: unchanged
    assert after["sha256"] == before["sha256"]  # the same image...
    assert after["probabilities"] == fresh["probabilities"]  # ...answered by the new model
    assert after["probabilities"] != before["probabilities"]


class Hammer:
    """Predictions sent without pause from threads until stopped; every answer kept."""

    def __init__(self, urls: list[str], images: list[bytes]) -> None:
        self.urls, self.images = urls, images
        self.answers: list[tuple[int, str | None]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(3)]

    def __enter__(self) -> Hammer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self, offset: int) -> None:
        turn = offset
        while not self._stop.is_set():
            url = self.urls[turn % len(self.urls)]
            try:
                response = post(url, self.images[turn % len(self.images)])
            except httpx.HTTPError as exc:  # counted as a failure, not lost with the thread
                self.answers.append((0, repr(exc)))
            else:
                digest = response.json().get("digest") if response.status_code == 200 else None
                self.answers.append((response.status_code, digest))
            turn += 1


def test_a_reload_reaches_every_worker_and_replica_before_its_call_answers(
    tmp_path: Path,
) -> None:
    with two_replicas(tmp_path) as stack:
        urls = stack.predict_urls()
        seen = new_images(20, seed=0)
        for i, image in enumerate(seen):  # entries of the old model, in the shared Redis
            assert post(urls[i % len(urls)], image).status_code == 200
        old = post(urls[0], SAMPLE).json()
        assert post(urls[0], SAMPLE).json()["cached"] is True  # the gateway's own hit
        set_fit_in_box(stack.models, 10)
        with Hammer(urls, [SAMPLE, *seen[:5], *new_images(40, seed=100)]) as hammer:
            while len(hammer.answers) < 20:  # under load before the reload...
                threading.Event().wait(0.05)
            loaded = stack.load()
            during = len(hammer.answers)
            while len(hammer.answers) < during + 20:  # ...and after it
                threading.Event().wait(0.05)
        assert loaded.status_code == 200, loaded.text
        assert {status for status, _ in hammer.answers} == {200}  # 0 failures throughout
        new = folder_digests(stack.models, "mnist")["1"]
        assert new != old["digest"]
        assert {digest for _, digest in hammer.answers} <= {old["digest"], new}

        # After the call answered: 200 requests over the gateway (its hit cache included)
        # and every worker of both replicas, repeats of old entries and new images alike.
        images = [*seen, SAMPLE, *new_images(29, seed=200)]
        jobs = [(urls[i % len(urls)], images[i % len(images)]) for i in range(200)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda job: post(*job), jobs))
        assert [a.status_code for a in answers] == [200] * 200
        assert {a.json()["digest"] for a in answers} == {new}
        assert any(a.json()["cached"] for a in answers)  # the new model's entries, reused
        sample = [a.json() for a in answers if a.json()["sha256"] == old["sha256"]]
        assert sample and all(a["probabilities"] != old["probabilities"] for a in sample)
        for replica in stack.replicas:  # every worker's metadata says so too
            for _ in range(8 * TEST_WORKERS):
                metadata = httpx.get(replica.url + "/v1/models/mnist").json()
                assert metadata["digest"] == new


def test_without_redis_the_workers_of_one_service_follow_a_reload(tmp_path: Path) -> None:
    """No Redis to announce it through: the other workers follow the shared file."""
    models = copy_models(tmp_path)
    service = model_api_process(
        "mnist", free_port(), "", tmp_path / "model_api.log", MLSERVE_MODELS_DIR=str(models)
    ).start()
    try:
        old = httpx.get(service.url + "/v1/models/mnist").json()["digest"]
        set_fit_in_box(models, 10)
        new = folder_digests(models, "mnist")["1"]
        loaded = httpx.post(service.url + "/v2/repository/models/mnist/load", timeout=60)
        assert loaded.status_code == 200
        digests = []
        for _ in range(200):  # polled on fresh connections, spread over both workers
            digests.append(httpx.get(service.url + "/v1/models/mnist").json()["digest"])
            if digests[-2 * 8 * TEST_WORKERS :].count(new) == 2 * 8 * TEST_WORKERS:
                break
            threading.Event().wait(0.05)
        assert digests[-1] == new != old
        assert set(digests) <= {old, new}
    finally:
        service.stop()
