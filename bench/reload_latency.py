"""How long a reload takes to reach every worker of every replica (issue 26: within 1 s).

Two model_api replicas with 2 workers each on one Redis, a gateway in front of one
(`harness.replicas`). Each round changes mnist's `fit_in_box` size (20 <-> 10), calls load
through the gateway, and times the call: it answers only once every listening worker has
reloaded. Then every worker is asked for its digest on fresh connections, so that a worker
the call did not wait for would show. Prints one JSON line per round and a summary.

    PYTHONPATH=. .venv/bin/python -m bench.reload_latency [--rounds 10] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from harness.replicas import set_fit_in_box, two_replicas
from model_api.model_identity import folder_digests

PROBES_PER_REPLICA = 16
"""Fresh-connection metadata reads per replica after each reload (spread over its workers)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, help="append the JSON lines to this file")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, two_replicas(Path(tmp)) as stack:
        for round_number in range(args.rounds):
            set_fit_in_box(stack.models, 10 if round_number % 2 == 0 else 20)
            wanted = folder_digests(stack.models, "mnist")["1"]
            start = time.perf_counter()
            answer = stack.load()
            load_ms = (time.perf_counter() - start) * 1000
            stale = sum(
                httpx.get(replica.url + "/v1/models/mnist").json()["digest"] != wanted
                for replica in stack.replicas
                for _ in range(PROBES_PER_REPLICA)
            )
            row = {
                "round": round_number,
                "status": answer.status_code,
                "load_ms": round(load_ms, 1),
            }
            row["stale_answers_after"] = stale
            rows.append(row)
            print(json.dumps(row), flush=True)
    times = [r["load_ms"] for r in rows]
    summary = {
        "replicas": 2,
        "workers_each": 2,
        "load_ms_median": round(statistics.median(times), 1),
        "load_ms_max": max(times),
        "stale_answers_after": sum(r["stale_answers_after"] for r in rows),
        "failed_loads": sum(r["status"] != 200 for r in rows),
    }
    print(json.dumps(summary))
    if args.out:
        with args.out.open("a") as fh:
            for row in [*rows, summary]:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
