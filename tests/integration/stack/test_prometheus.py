"""A real Prometheus server scrapes a real stack: its query API shows MLServe's counters and
histograms move with the traffic, summed over each service's worker processes."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.hostile import unique_small_pngs
from harness.redis_server import free_port
from harness.services import RunningServices, running_services

SCRAPE_SECONDS = 1


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServices]:
    with running_services(tmp_path_factory.mktemp("prometheus-stack"), "mnist") as services:
        yield services


@pytest.fixture(scope="module")
def prometheus(stack: RunningServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("no prometheus binary: ./scripts/test.sh installs Debian's package")
    folder = tmp_path_factory.mktemp("prometheus")
    targets = {"model_api": stack.model_api_url, "web_api": stack.url}
    (folder / "prometheus.yml").write_text(
        f"global:\n  scrape_interval: {SCRAPE_SECONDS}s\nscrape_configs:\n"
        + "".join(
            f"  - job_name: {job}\n    static_configs:\n"
            f"      - targets: ['{url.removeprefix('http://')}']\n"
            for job, url in targets.items()
        )
    )
    port = free_port()
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        every_job_up = lambda: query(url, "min(up)") == 1.0 and query(url, "count(up)") == 2  # noqa: E731
        wait_for(every_job_up, "the first scrapes", folder)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def query(url: str, expression: str) -> float | None:
    """One instant query's single value (None when there is none yet)."""
    try:
        answer = httpx.get(url + "/api/v1/query", params={"query": expression}, timeout=5)
    except httpx.HTTPError:
        return None
    result = answer.json()["data"]["result"] if answer.status_code == 200 else []
    return float(result[0]["value"][1]) if result else None


def wait_for(check, what: str, folder: Path | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            log = (folder / "prometheus.log").read_text()[-2000:] if folder else ""
            raise AssertionError(f"Prometheus never showed {what}\n{log}")
        time.sleep(0.2)


def test_prometheus_sees_the_counters_and_histograms_move(
    stack: RunningServices, prometheus: str
) -> None:
    series = {
        "inferences": 'sum(mlserve_inferences_total{model="mnist"})',
        "requests": 'sum(mlserve_request_duration_seconds_count{model="mnist"})',
        "successes": 'sum(mlserve_request_success_total{model="mnist"})',
        # a repeat is answered by the gateway's cache read, or by model_api's
        "hits": '(sum(mlserve_cache_hits_total{model="mnist"}) or vector(0))'
        ' + (sum(mlserve_gateway_cache_lookups_total{model="mnist",result="hit"}) or vector(0))',
        "lookups": 'sum(mlserve_cache_lookup_duration_seconds_count{model="mnist"})',
        "compute": 'sum(mlserve_compute_duration_seconds_count{model="mnist"})',
    }
    before = {name: query(prometheus, expr) or 0.0 for name, expr in series.items()}
    images = unique_small_pngs(6, seed=77)
    for image in images:
        assert httpx.post(stack.url + "/predict", content=image, timeout=30).status_code == 200
    assert httpx.post(stack.url + "/predict", content=images[0], timeout=30).json()["cached"]
    expected = {
        "inferences": 6,
        "requests": 6,
        "successes": 6,
        "hits": 1,
        "lookups": 6,
        "compute": 6,
    }

    def moved() -> bool:
        now = {name: query(prometheus, expr) or 0.0 for name, expr in series.items()}
        return all(now[name] - before[name] >= count for name, count in expected.items())

    wait_for(moved, f"the counters move by {expected}")
    median = query(
        prometheus,
        "histogram_quantile(0.5, sum by (le) "
        '(rate(mlserve_request_duration_seconds_bucket{model="mnist"}[1m])))',
    )
    assert median is not None and 0 < median < 10
