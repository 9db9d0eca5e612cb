"""Turn a py-spy raw (collapsed stacks) file into a table of where model_api's time goes.

    python bench/profile_summary.py OUT/hits.txt --rate 200 --seconds 15 \
        [--title hits] [--load OUT/hits_clean.json --load OUT/hits_profiled.json] [--src DIR]

Each line of a raw file is `frame;frame;...;leaf COUNT`, root first, each frame
`function (path:line)`; with py-spy's `--threads` the root is `thread (TID): NAME`, which
tells the event loop (MainThread) from worker threads. Every sample goes to one bucket:
  1. the first ANYWHERE rule that matches any frame of the stack (work that owns everything
     under it: the model run, decode, preprocess, redis-py, the response_model pass, ...);
  2. else the first frame, walking from the leaf to the root, that a LEAF rule matches.
A leaf frame in our own code whose statement builds or dumps a pydantic model (read from
the source under --src) counts as pydantic, since pydantic-core's own work has no Python
frame. `--load` takes the JSON lines bench/profile_hot_path.sh writes (req/s, CPU/request).
Prints markdown: the bucket table, then the top self and total frames. Samples are
wall-clock samples of threads py-spy saw as not idle: on a busy machine they include time
waiting for a CPU or for the GIL, so read CPU per request from the load JSON, not from them.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<path>.*?)(?::(?P<line>\d+))?\)$")
PYDANTIC_STATEMENT = re.compile(
    r"model_validate|model_dump|model_copy|\b(PredictResponse|Prediction|Timings|"
    r"ModelMetadata|TensorMetadata|Readiness|Liveness)\("
)

# (bucket, path regex, function regex or None); paths are as py-spy prints them, shortened
# to the import path (`redis/asyncio/client.py`) or full (`--full-filenames`): match the tail.
ANYWHERE = [
    ("ORT run", r"onnxruntime/|model_api/inference\.py", None),
    ("PIL decode", r"model_api/imaging\.py", None),
    ("preprocess (PIL + numpy)", r"model_api/preprocess\.py", None),
    ("redis-py (get/set)", r"(^|/)redis/", None),
    ("response_model re-validation", r"fastapi/routing\.py", r"serialize_response"),
    ("JSON render", r"(^|/)json/|starlette/responses\.py|fastapi/responses\.py", r"render|dumps"),
    ("access logging", r"(^|/)logging/|uvicorn/logging\.py", None),
    (
        "sync-dependency thread hops (anyio)",
        r"starlette/concurrency\.py|anyio/to_thread\.py|model_api/routes\.py",
        r"run_in_threadpool|run_sync|get_service|served_model",
    ),
    (
        "sync-dependency thread hops (anyio)",
        r"anyio/_backends/_asyncio\.py",
        r"run_sync_in_worker_thread|WorkerThread|CapacityLimiter",
    ),
    ("inference executor hop", r"asyncio/base_events\.py", r"run_in_executor"),
]
LEAF = [
    ("inference executor hop", r"concurrent/futures/", None),
    ("pydantic (handler models)", r"(^|/)pydantic(_core)?/|fastapi/(_compat|encoders)", None),
    (
        "middleware",
        r"mlserve_common/runtime/observability\.py|starlette/middleware/|fastapi/middleware/|"
        r"fastapi/(telemetry/|_body_limit\.py)|starlette/_exception_handler\.py",
        None,
    ),
    (
        "request body read",
        r"mlserve_common/runtime/body\.py|model_api/request_body\.py|starlette/requests\.py",
        None,
    ),
    ("uvicorn / httptools", r"(^|/)(uvicorn|httptools)/", None),
    ("routing + dependency solving", r"(^|/)(fastapi|starlette)/", None),
    ("own code (cache key, predictor, routes)", r"(^|/)(model_api|mlserve_common)/", None),
    ("event loop (asyncio / uvloop)", r"(^|/)(asyncio|uvloop|selectors\.py|socket\.py)", None),
]
# Frames left out of "top total": process/thread roots and the ASGI wrapper chain, which
# sit above every request and say nothing about where its time goes.
WRAPPERS = re.compile(
    r"<frozen |threading\.py|asyncio/runners\.py|uvicorn/(main|server|_compat)\.py|"
    r"model_api/__main__\.py|mlserve_common/runtime/server\.py|starlette/(applications|routing)\.py|"
    r"fastapi/applications\.py|starlette/middleware/|fastapi/middleware/|fastapi/telemetry/|"
    r"fastapi/_body_limit\.py|starlette/_exception_handler\.py|run_asgi|"
    r"RequestIdMiddleware\.__call__ |_worker \(concurrent|_WorkItem\.run |"
    r"^(APIRouter\.(app|handle)|_IncludedRouter\.|request_response\.|APIRoute\.handle)"
)
# A worker thread whose leaf is its blocking wait (an AnyIO worker in Condition.wait, an
# inference thread in its work-queue get) is parked, whatever py-spy's idle check said:
# with ~40 AnyIO threads it marks many parked ones active. Counted apart, not as time.
IDLE_LEAF = re.compile(r"^(Condition\.wait \(threading\.py|_worker \(concurrent/futures/)")
IDLE = "idle (parked worker threads, excluded)"


Frame = tuple[str, str, int]  # function, path, line


def parse(line: str) -> tuple[str | None, list[Frame], int]:
    """(thread name or None, frames root first, sample count) of one raw line."""
    stack, count = line.rstrip("\n").rsplit(" ", 1)
    thread, frames = None, []
    for raw in stack.split(";"):
        if raw.startswith("thread ("):
            thread = raw.split(": ", 1)[-1]
        elif m := FRAME.match(raw):
            frames.append((m["func"], m["path"], int(m["line"] or 0)))
    return thread, frames, int(count)


def _match(rule: tuple[str, str, str | None], frame: Frame) -> bool:
    _, path_re, func_re = rule
    if not re.search(path_re, frame[1]):
        return False
    return func_re is None or bool(re.search(func_re, frame[0]))


@cache
def _statement(src: Path, path: str, line: int) -> str:
    """The source of the innermost statement at `path:line`, or '' when unreadable."""
    packages = ("model_api/", "mlserve_common/")
    candidates = [Path(path)] + [src / path[path.index(p) :] for p in packages if p in path]
    for file in candidates:
        if file.is_file():
            text = file.read_text()
            around = [
                node
                for node in ast.walk(ast.parse(text))
                if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or 0)
            ]
            if not around:
                return ""
            best = min(around, key=lambda node: (node.end_lineno or 0) - node.lineno)
            return ast.get_source_segment(text, best) or ""
    return ""


def bucket(frames: list[Frame], src: Path) -> str:
    if not frames:
        return "other (no Python frame)"
    func, path, line = frames[-1]
    if frames[0][0] == "Thread._bootstrap" and IDLE_LEAF.match(f"{func} ({path}"):
        return IDLE
    for rule in ANYWHERE:
        if any(_match(rule, f) for f in frames):
            return rule[0]
    if re.search(r"(^|/)(model_api|mlserve_common)/", path) and PYDANTIC_STATEMENT.search(
        _statement(src, path, line)
    ):
        return "pydantic (handler models)"
    if frames[-1][0] == "Runner.run":  # uvloop's C loop: epoll, socket I/O, callbacks
        return "event loop (asyncio / uvloop)"
    for frame in reversed(frames):
        for rule in LEAF:
            if _match(rule, frame):
                return rule[0]
    return "other"


def is_loop_thread(thread: str | None, frames: list[Frame]) -> bool:
    if thread is not None:
        return thread == "MainThread"
    return not frames or frames[0][0] != "Thread._bootstrap"


def summarize(path: Path, rate: float, seconds: float, src: Path, top: int) -> dict:
    buckets: Counter[str] = Counter()
    loop: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total_time: Counter[str] = Counter()
    frame_bucket: defaultdict[str, Counter[str]] = defaultdict(Counter)
    idle = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        thread, frames, n = parse(line)
        b = bucket(frames, src)
        if b == IDLE:
            idle += n
            continue
        buckets[b] += n
        if is_loop_thread(thread, frames):
            loop[b] += n
        if frames:
            func, file, lineno = frames[-1]
            leaf = f"{func} ({file}:{lineno})"
            self_time[leaf] += n
            frame_bucket[leaf][b] += n
            seen = set()
            for i, (f, p, _) in enumerate(frames):
                key = f"{f} ({p})"
                if key in seen or WRAPPERS.search(key):
                    continue
                seen.add(key)
                total_time[key] += n
                frame_bucket[key][bucket(frames[: i + 1], src)] += n  # its own time's bucket
    return {
        "samples": sum(buckets.values()),
        "idle": idle,
        "slots": rate * seconds,
        "buckets": buckets,
        "loop": loop,
        "self": self_time.most_common(top),
        "total": total_time.most_common(top),
        "frame_bucket": {k: c.most_common(1)[0][0] for k, c in frame_bucket.items()},
    }


def render(s: dict, title: str, loads: list[dict], rate: float, seconds: float) -> str:
    n = s["samples"]
    out = [f"### {title}", ""]
    for load in loads:
        kinds = ", ".join(f"{k} x{v}" for k, v in load.get("error_kinds", {}).items())
        errors = f"{load['errors']} ({kinds})" if kinds else f"{load['errors']}"
        out.append(
            f"- {load.get('run', 'run')}: **{load['rps']:.0f} req/s**, "
            f"p50 {load['p50_ms']:.1f} ms, p99 {load['p99_ms']:.1f} ms, errors {errors}; "
            f"model_api CPU {load['cpu_ms_per_req']:.2f} ms/req "
            f"(event-loop thread {load['loop_thread_cpu_ms_per_req']:.2f}), "
            f"{load['cpu_cores_used']:.2f} cores"
        )
    loop_n = sum(s["loop"].values())
    out.append(
        f"- py-spy: {n} samples in {seconds:g} s at {rate:g} Hz ({s['idle']} more of parked "
        f"worker threads left out); busy in {100 * loop_n / s['slots']:.0f}% of the slots on "
        f"the event-loop thread, {100 * (n - loop_n) / s['slots']:.0f}% summed over workers"
    )
    out += ["", "| bucket | % samples | of which event-loop thread |", "|---|---:|---:|"]
    for name, count in s["buckets"].most_common():
        out.append(f"| {name} | {100 * count / n:.1f} | {100 * s['loop'][name] / n:.1f} |")
    for kind in ("self", "total"):
        out += ["", f"Top {kind} frames (% samples, bucket):", ""]
        out += [f"- `{k}` {100 * v / n:.1f}% ({s['frame_bucket'][k]})" for k, v in s[kind]]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("raw", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--rate", type=float, default=200, help="py-spy --rate")
    parser.add_argument("--seconds", type=float, default=15, help="py-spy --duration")
    parser.add_argument("--title", default=None)
    parser.add_argument(
        "--load", type=Path, action="append", default=[], help="JSON of a load run (repeatable)"
    )
    parser.add_argument("--src", type=Path, default=Path.cwd(), help="checkout profiled")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    loads = []
    for p in args.load:
        load = json.loads(p.read_text())
        load["run"] = "profiled" if "profiled" in p.name else "clean"
        loads.append(load)
    s = summarize(args.raw, args.rate, args.seconds, args.src, args.top)
    print(render(s, args.title or args.raw.stem, loads, args.rate, args.seconds))


if __name__ == "__main__":
    main()
