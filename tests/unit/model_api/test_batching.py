"""Dynamic batching on the real leukemia session: shared runs, own answers, a bounded queue."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from PIL import Image

from harness.images import MODELS_DIR, samples
from model_api.batching import Batcher
from model_api.errors import OverloadedError
from model_api.inference import CPU, CUDA, ModelRunner, batch_shapes
from model_api.model_config import BatchingConfig, load_model_config
from model_api.preprocess import preprocess


@pytest.fixture(scope="module")
def runner() -> ModelRunner:
    return ModelRunner(
        load_model_config(MODELS_DIR, "leukemia"), MODELS_DIR / "leukemia" / "model.onnx", "cpu", 1
    )


def images(count: int, seed: int = 0) -> list[np.ndarray]:
    """The leukemia samples, preprocessed as served, each with a little noise of its own."""
    config = load_model_config(MODELS_DIR, "leukemia")
    base = [preprocess(Image.open(path), config) for path, _ in samples("leukemia")]
    rng = np.random.default_rng(seed)
    return [
        (base[i % len(base)] + rng.normal(0, 0.3, base[0].shape)).astype(np.float32)
        for i in range(count)
    ]


async def run_batched(runner: ModelRunner, config: BatchingConfig, tensors) -> list:
    batcher = Batcher(runner, config)
    batcher.start()
    try:
        return await asyncio.gather(*(batcher.infer(t) for t in tensors), return_exceptions=True)
    finally:
        await batcher.close()


async def test_concurrent_images_share_runs_and_each_gets_its_own_row(runner) -> None:
    tensors = images(24)
    alone = [runner.run(t)[0] for t in tensors]
    before = runner.inference_count
    config = BatchingConfig(max_batch_size=8, max_queue_delay_ms=50)
    rows = await run_batched(runner, config, tensors)
    assert runner.inference_count - before == 24  # counted per image
    for row, expected in zip(rows, alone, strict=True):
        np.testing.assert_allclose(row, expected, atol=1e-5)
    # the inputs differ enough that a row given to the wrong waiter would show
    assert len({round(float(r[0]), 4) for r in rows}) > 12


async def test_batches_are_bounded_by_max_batch_size(runner, monkeypatch) -> None:
    sizes: list[int] = []
    real_run = runner.run
    monkeypatch.setattr(runner, "run", lambda batch: sizes.append(len(batch)) or real_run(batch))
    await run_batched(runner, BatchingConfig(max_batch_size=8, max_queue_delay_ms=50), images(20))
    assert sum(sizes) == 20 and max(sizes) == 8 and len(sizes) == 3


async def test_one_bad_tensor_never_fails_its_batch_mates(runner) -> None:
    good = images(5)
    bad = np.zeros((1, 3, 32, 32), np.float32)  # wrong size: the batched run cannot stack it
    results = await run_batched(
        runner, BatchingConfig(max_batch_size=8, max_queue_delay_ms=50), [*good[:2], bad, *good[2:]]
    )
    assert isinstance(results[2], Exception)
    for row, tensor in zip([*results[:2], *results[3:]], good, strict=True):
        np.testing.assert_allclose(row, runner.run(tensor)[0], atol=1e-5)


async def test_a_full_queue_refuses_at_once_with_retry_after(runner) -> None:
    config = BatchingConfig(max_batch_size=4, max_queue_delay_ms=20, max_queue_size=4)
    results = await run_batched(runner, config, images(10))
    refused = [r for r in results if isinstance(r, OverloadedError)]
    assert len(refused) == 6
    assert refused[0].status_code == 503 and refused[0].headers == {"Retry-After": "1"}
    assert "retry" in refused[0].message
    assert all(isinstance(r, np.ndarray) for r in results[:4])


async def test_abandoned_images_are_not_inferred(runner) -> None:
    batcher = Batcher(runner, BatchingConfig(max_batch_size=8, max_queue_delay_ms=30))
    batcher.start()
    before = runner.inference_count
    try:
        kept = asyncio.ensure_future(batcher.infer(images(1)[0]))
        dropped = [asyncio.ensure_future(batcher.infer(t)) for t in images(3, seed=1)]
        await asyncio.sleep(0)
        for task in dropped:
            task.cancel()
        await kept
    finally:
        await batcher.close()
    assert runner.inference_count - before == 1


def test_only_a_gpu_pads_batches_to_a_few_fixed_shapes() -> None:
    assert batch_shapes(16, CUDA) == [1, 2, 4, 8, 16]
    assert batch_shapes(12, CUDA) == [1, 2, 4, 8, 12]
    assert batch_shapes(16, CPU) == []  # a padded image costs a whole image's compute


@pytest.mark.parametrize(("provider", "runs"), [(CPU, 5), (CUDA, 8)])
def test_a_batch_runs_as_it_is_or_padded_and_cut(monkeypatch, provider: str, runs: int) -> None:
    config = load_model_config(MODELS_DIR, "leukemia")
    assert config.batching is not None  # shipped with batching on
    runner = ModelRunner(config, MODELS_DIR / config.name / config.file, "cpu", 1)
    assert runner.provider == CPU and runner.batch_shapes == []
    # no GPU here: the CUDA case gives the CPU session the shapes a CUDA one would get
    runner.batch_shapes = batch_shapes(config.batching.max_batch_size, provider)
    seen: list[int] = []
    real = runner._session_run
    monkeypatch.setattr(
        runner, "_session_run", lambda batch: seen.append(len(batch)) or real(batch)
    )
    tensors = images(5)
    rows = runner.run(np.concatenate(tensors))
    assert seen == [runs] and rows.shape == (5, 2)  # cut for the caller
    assert runner.inference_count == 5  # the padding is not counted
    for row, tensor in zip(rows, tensors, strict=True):
        np.testing.assert_allclose(row, real(tensor)[0], atol=1e-5)


async def test_a_batch_waits_only_for_images_on_their_way(runner, monkeypatch) -> None:
    sizes: list[int] = []
    real_run = runner.run
    monkeypatch.setattr(runner, "run", lambda batch: sizes.append(len(batch)) or real_run(batch))
    batcher = Batcher(runner, BatchingConfig(max_batch_size=8, max_queue_delay_ms=1000))
    batcher.start()
    first, second, third = images(3)

    async def decoded_after(seconds: float, tensor) -> np.ndarray:
        with batcher.expecting() as announcement:
            await asyncio.sleep(seconds)  # still decoding: the batch waits for it
            return await batcher.infer(tensor, announcement)

    async def fails_to_decode() -> None:
        with batcher.expecting():
            await asyncio.sleep(0.05)
            raise ValueError("corrupt")

    try:
        # alone: runs at once, not after the 1 s delay
        await asyncio.wait_for(batcher.infer(first), 0.5)
        # two announced images: the first waits for the second, one run for both
        await asyncio.wait_for(
            asyncio.gather(decoded_after(0, first), decoded_after(0.05, second)), 5
        )
        # the only other image on its way fails to decode: no waiting out the 1 s delay
        outcome = await asyncio.wait_for(
            asyncio.gather(decoded_after(0, third), fails_to_decode(), return_exceptions=True),
            0.8,
        )
    finally:
        await batcher.close()
    assert sizes == [1, 2, 1]
    assert isinstance(outcome[0], np.ndarray) and isinstance(outcome[1], ValueError)
