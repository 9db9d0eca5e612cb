"""Facts recorded with every run: the machine, the software versions, the code's commit."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata

from bench.load.wrk import wrk_version
from bench.peers.processes import ROOT
from bench.peers.targets import BENTOML_VENV, LITSERVE_VENV

PACKAGES = ("fastapi", "starlette", "uvicorn", "onnxruntime", "numpy", "pillow", "pydantic")


def machine() -> dict:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        model = names[0] if names else ""
    with open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu": model,
        "memory_gb": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
    }


def steal_seconds() -> float:
    """CPU time the hypervisor gave to other machines so far, over all cores (the `steal`
    column of /proc/stat): what a shared machine's noise costs a measurement."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _versions_in(python: str, names: tuple[str, ...]) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m\nout = {}\n"
        f"for n in {list(names)!r}:\n"
        "    try:\n        out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError:\n        pass\n"
        "print(json.dumps(out))"
    )
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
        return json.loads(done.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {}


def versions() -> dict:
    """Versions per environment: the repo's .venv (MLServe, plain FastAPI), the peers' venvs."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
    return {
        "mlserve_commit": git("rev-parse", "--short", "HEAD"),
        "mlserve_tree_dirty": bool(git("status", "--porcelain", "--", ".", ":!bench")),
        "venv": {n: metadata.version(n) for n in PACKAGES},
        "venv_python": sys.version.split()[0],
        "litserve_venv": _versions_in(str(LITSERVE_VENV / "python"), ("litserve", *PACKAGES)),
        "bentoml_venv": _versions_in(str(BENTOML_VENV / "python"), ("bentoml", *PACKAGES)),
        "wrk": wrk_version(),
        "redis": redis.stdout.split(" sha=")[0].strip(),
    }
