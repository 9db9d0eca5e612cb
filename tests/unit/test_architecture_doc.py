"""docs/architecture.md maps every module of the three Python packages in a line: a module
added, removed or renamed without its line fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
PACKAGES = ["mlserve_common", "model_api", "web_api"]


def _listed(package: str) -> set[str]:
    """The paths the doc's table for `package` names (first column, in backticks)."""
    section = re.search(rf"^### `{package}/`.*?\n(.*?)(?=^### |\Z)", DOC, re.M | re.S)
    assert section, f"docs/architecture.md has no section for {package}/"
    names = set()
    for row in section.group(1).splitlines():
        if row.startswith("| `"):
            names |= set(re.findall(r"`([^`]+)`", row.split("|")[1]))
    return names


def _modules(package: str) -> set[str]:
    """Every module of the package, relative to it; a folder of scripts that are not part of
    the package (`tests/`) counts by its files, or as a whole when listed so."""
    folder = ROOT / package
    return {
        str(path.relative_to(folder))
        for path in folder.rglob("*.py")
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_has_its_line(package: str) -> None:
    listed = _listed(package)
    folders = {name for name in listed if name.endswith("/")}
    missing = {
        module
        for module in _modules(package)
        if module not in listed and not any(module.startswith(f) for f in folders)
    }
    assert not missing, f"modules of {package}/ with no line in docs/architecture.md: {missing}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_line_names_a_module_that_exists(package: str) -> None:
    gone = {name for name in _listed(package) if not (ROOT / package / name).exists()}
    assert not gone, f"docs/architecture.md lists what {package}/ does not have: {gone}"
