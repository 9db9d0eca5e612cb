"""scripts/githooks/commit-msg: a subject of at most 72 characters, then a blank line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

HOOK = Path(__file__).resolve().parents[2] / "scripts" / "githooks" / "commit-msg"


def _run(message: str, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "COMMIT_EDITMSG"
    path.write_text(message, encoding="utf-8")
    return subprocess.run([str(HOOK), str(path)], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    "message",
    [
        "Short subject\n",
        "x" * 72 + "\n\nA body that may be as long as it likes " + "y" * 200 + "\n",
        "Subject with a body\n\nWhy.\n# Please enter the commit message...\n",
        "Ünïcödé counts characters, not bytes " + "é" * 30 + "\n",
    ],
)
def test_good_messages_pass(message: str, tmp_path: Path) -> None:
    result = _run(message, tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ("x" * 73 + "\n", "73 characters"),
        ("Subject\nbody glued to it\n", "blank line"),
        ("\n\nbody only\n", "empty"),
        ("# only a comment\n", "empty"),
    ],
)
def test_bad_messages_are_refused_with_the_reason(message: str, says: str, tmp_path: Path) -> None:
    result = _run(message, tmp_path)
    assert result.returncode == 1 and says in result.stderr


def test_every_commit_of_this_branch_since_the_hook_passes_it(tmp_path: Path) -> None:
    """The hook's own rule holds for the commits made since it was added."""
    root = HOOK.parents[2]
    log = subprocess.run(
        ["git", "log", "--format=%H", "--", str(HOOK.relative_to(root))],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if log.returncode != 0 or not log.stdout.strip():
        pytest.skip("not a git checkout with the hook committed")
    first = log.stdout.split()[-1]
    subjects = subprocess.run(
        ["git", "log", "--format=%s", f"{first}..HEAD"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    subjects.append(
        subprocess.run(
            ["git", "log", "-1", "--format=%s", first],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    assert all(len(s) <= 72 for s in subjects), [s for s in subjects if len(s) > 72]
