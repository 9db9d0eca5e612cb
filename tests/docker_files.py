"""The Docker deliverables the tests read, and the linters' binaries."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from harness import ROOT

DOCKERFILES = sorted(ROOT.glob("*/Dockerfile"))
COMPOSE_FILES = [ROOT / "docker-compose.yml", ROOT / "docker-compose.gpu.yml"]


def tool(name: str) -> str:
    """Path of a CLI from requirements-docker-test.txt: the running venv's first, then PATH."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.is_file() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: pip install -r requirements-docker-test.txt")
    return found
