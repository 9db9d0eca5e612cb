"""How many CPU cores this process may really use, and how to split them among workers."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def _cgroup_limit(path: Path = CGROUP_CPU_MAX) -> float | None:
    """The CPU quota of a cgroup v2 (`docker run --cpus`), in cores; None when unlimited."""
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)


def available_cores() -> int:
    """Cores allowed by CPU affinity (taskset, cpusets) and by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    limit = _cgroup_limit()
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(1, cores)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Intra-op threads for each of `workers` processes, so that together they fill the cores
    and do not oversubscribe them."""
    return max(1, (cores or available_cores()) // max(1, workers))
