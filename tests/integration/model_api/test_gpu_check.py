"""scripts/gpu_check.sh in its `--cpu-smoke` mode: the check a GPU host gets (parity, raw
throughput, the real model_api under load, with and without batching) runs here first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import ROOT
from harness.model_copies import shipped_batching


@pytest.mark.parametrize(
    ("model", "max_batch_size"),
    [("mnist", 64), ("leukemia", shipped_batching("leukemia")["max_batch_size"])],
)
def test_the_gpu_check_runs_on_the_cpu_with_and_without_batching(
    tmp_path, model: str, max_batch_size: int
) -> None:
    """mnist ships unbatched: the check's own batching is its "on"; leukemia ships batched:
    its own batching is "on", and "off" is a copy without it."""
    report_path = tmp_path / "gpu_check.json"
    argv = ["scripts/gpu_check.sh", "--cpu-smoke", "--batching", "--workers", "1"]
    argv += ["--model", model]
    done = subprocess.run(
        [*argv, "--duration", "1", "--out", str(report_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)},  # its copies
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["passed"] and report["mode"] == "cpu-smoke" and report["load_model"] == model
    assert {row["provider"] for row in report["parity"]} == {"CPUExecutionProvider"}
    plain, batched = report["load"]
    assert plain["batching"] is None and batched["batching"]["max_batch_size"] == max_batch_size
    off_models = Path(plain["settings"]["MLSERVE_MODELS_DIR"])
    assert "batching" not in json.loads((off_models / model / "config.json").read_text())
    for row in (plain, batched):
        assert row["workers"] == 1 and row["errors"] == 0 and row["ok"] > 0
        assert row["ready"]["provider"] == "CPUExecutionProvider"
    assert plain["images_per_run"] == 1.0  # unbatched: one session run per image
    assert batched["images_per_run"] > 1.0  # the batched run really formed batches
    assert "b x1" in done.stdout  # the summary tells the batched run apart


def test_without_opencv_the_gpu_check_serves_mnist_without_the_paper_steps(
    tmp_path: Path,
) -> None:
    """The GPU host has no OpenCV (scripts/gpu/prepare_extra.sh): the check's copy of a config
    drops the paper steps, and keeps every other step as it is."""
    sys.path.insert(0, str(ROOT / "scripts" / "gpu"))
    try:
        import served
    finally:
        sys.path.remove(str(ROOT / "scripts" / "gpu"))
    shipped = json.loads((ROOT / "models" / "mnist" / "config.json").read_text())
    path = tmp_path / "config.json"
    path.write_text(json.dumps(shipped))
    served.without_paper_steps(path)
    ops = [step["op"] for step in json.loads(path.read_text())["preprocess"]]
    assert not set(ops) & set(served.PAPER_OPS)
    assert ops == [s["op"] for s in shipped["preprocess"] if s["op"] not in served.PAPER_OPS]
    assert len(ops) == len(shipped["preprocess"]) - 4
