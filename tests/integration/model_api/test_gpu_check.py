"""scripts/gpu_check.sh in its `--cpu-smoke` mode: the check a GPU host gets (parity, raw
throughput, the real model_api under load, with and without batching) runs here first."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from harness import ROOT


def test_the_gpu_check_runs_on_the_cpu_with_and_without_batching(tmp_path) -> None:
    report_path = tmp_path / "gpu_check.json"
    argv = ["scripts/gpu_check.sh", "--cpu-smoke", "--batching", "--workers", "1"]
    done = subprocess.run(
        [*argv, "--duration", "1", "--out", str(report_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["passed"] and report["mode"] == "cpu-smoke"
    assert {row["provider"] for row in report["parity"]} == {"CPUExecutionProvider"}
    plain, batched = report["load"]
    assert plain["batching"] is None and batched["batching"]["max_batch_size"] == 64
    for row in (plain, batched):
        assert row["workers"] == 1 and row["errors"] == 0 and row["ok"] > 0
        assert row["ready"]["provider"] == "CPUExecutionProvider"
    assert plain["images_per_run"] == 1.0  # unbatched: one session run per image
    assert batched["images_per_run"] > 1.0  # the batched run really formed batches
    assert "b x1" in done.stdout  # the summary tells the batched run apart
