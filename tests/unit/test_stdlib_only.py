"""`mlserve_common.stdlib_only` and `stackctl` need nothing but the standard library: they run
before any virtual environment exists (the `*_all.sh` scripts, the container checks). Each
module is imported by a Python that sees no site-packages and no environment (`-I -S`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(
    f"mlserve_common.stdlib_only.{path.stem}"
    for path in (ROOT / "mlserve_common" / "stdlib_only").glob("*.py")
    if path.stem != "__init__"
) + sorted(f"stackctl.{path.stem}" for path in (ROOT / "stackctl").glob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_imports_with_the_standard_library_alone(module: str) -> None:
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import {module}"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{module} needs more than the standard library:\n{done.stderr}"


def test_the_check_finds_a_module_that_needs_more() -> None:
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import mlserve_common.runtime.errors"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, check=False
    )
    assert done.returncode != 0  # fastapi is not in the standard library
