"""`python -m model_api` refuses a MODEL_NAME that names no model, before serving."""

from __future__ import annotations

import subprocess
import sys

from harness import ROOT


def test_model_api_refuses_an_unknown_model_at_start() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "model_api"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"MODEL_NAME": "resnet", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown model 'resnet'" in result.stderr
    assert "leukemia" in result.stderr and "mnist" in result.stderr
