#!/usr/bin/env bash
# py-spy profile of model_api's /predict hot path under two loads (issue 9):
#   hits   - 32 clients post the same warmed PNG, models/mnist/samples/0_rgb_200.png (every
#            request a cache hit)
#   misses - 32 clients post a different seeded random 28x28 PNG each time (every request
#            decodes, preprocesses and runs the model)
# For each load: a clean run (req/s, latency, model_api CPU ms per request, no profiler
# attached), then the same load again with `py-spy record --format raw` for PROFILE_S
# seconds (--nonblocking), then bench/profile_summary.py turns the collapsed stacks into a
# bucket table. Load generator, model_api and Redis share the machine: note its load.
#
# Usage (from the repo root; the python must have the project's deps, aiohttp and py-spy):
#   bench/profile_hot_path.sh --checkout DIR     # start Redis + model_api (mnist) from DIR
#   bench/profile_hot_path.sh --url http://127.0.0.1:8000 --pid PID   # profile a running one
# Environment (defaults): PYTHON (.venv/bin/python), PYSPY (py-spy next to PYTHON),
#   OUT (/tmp/mlserve-profile), DURATION (20 s per run), PROFILE_S (15), RATE (200 Hz),
#   CONCURRENCY (32), LOADS ("hits misses"), PORT (8091) and REDIS_PORT (6391) for --checkout.
# Writes OUT/{hits,misses}_{clean,profiled}.json, OUT/{hits,misses}.txt (raw collapsed
# stacks; speedscope.app opens them as is) and OUT/summary.md (what to paste in results/).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${PYTHON:-$HERE/../.venv/bin/python}"
PYSPY="${PYSPY:-$(dirname "$PYTHON")/py-spy}"
OUT="${OUT:-/tmp/mlserve-profile}"
DURATION="${DURATION:-20}"
PROFILE_S="${PROFILE_S:-15}"
RATE="${RATE:-200}"
CONCURRENCY="${CONCURRENCY:-32}"
LOADS="${LOADS:-hits misses}"
PORT="${PORT:-8091}"
REDIS_PORT="${REDIS_PORT:-6391}"
CHECKOUT="" URL="" PID=""
while [ $# -gt 0 ]; do
  case "$1" in
    --checkout) CHECKOUT="$(cd "$2" && pwd)"; shift 2 ;;
    --url) URL="$2"; shift 2 ;;
    --pid) PID="$2"; shift 2 ;;
    *) sed -n '2,19p' "$0"; exit 2 ;;
  esac
done
mkdir -p "$OUT"
SAMPLE="$HERE/../models/mnist/samples/0_rgb_200.png"

started_redis="" started_api=""
cleanup() {
  set +e  # wait reports the SIGTERM that stopped model_api: not an error here
  if [ -n "$started_api" ]; then kill "$started_api" 2>/dev/null; wait "$started_api"; fi
  if [ -n "$started_redis" ]; then redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT  # so that the EXIT trap stops what we started

if [ -n "$CHECKOUT" ]; then
  redis-server --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes >/dev/null
  started_redis=1
  (cd "$CHECKOUT" && PYTHONPATH=. MODEL_NAME=mnist MLSERVE_PORT="$PORT" \
    MLSERVE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" MLSERVE_LOG_LEVEL=warning \
    exec "$PYTHON" -m model_api) >"$OUT/model_api.log" 2>&1 &
  started_api=$! PID=$! URL="http://127.0.0.1:$PORT"
  SAMPLE="$CHECKOUT/models/mnist/samples/0_rgb_200.png"
  for _ in $(seq 60); do curl -sf "$URL/health/ready" >/dev/null && break; sleep 0.5; done
fi
[ -n "$URL" ] && [ -n "$PID" ] || { echo "need --checkout DIR, or --url and --pid" >&2; exit 2; }
curl -sf "$URL/health/ready" >/dev/null || { echo "model_api at $URL is not ready" >&2; exit 1; }
PREDICT="$URL/v1/models/mnist/predict?app_type=cli"

# Closed-loop load: N aiohttp clients for D seconds; model_api's CPU is read from /proc.
load() {  # load hits|misses SEED [STARTED_FILE] -> JSON on stdout
  "$PYTHON" - "$PREDICT" "$1" "$2" "$DURATION" "$CONCURRENCY" "$PID" "$SAMPLE" "${3:-}" <<'PY'
import asyncio, io, json, os, statistics, sys, time
import aiohttp, numpy as np
from PIL import Image
url, kind, seed, duration, concurrency, pid, sample, started = sys.argv[1:]
duration, concurrency = float(duration), int(concurrency)

def pngs(seed, n):  # distinct 28x28 grayscale "digits": a random blob plus noise
    rng = np.random.default_rng(int(seed))
    yy, xx = np.mgrid[:28, :28]
    for _ in range(n):
        cy, cx, sy, sx = rng.uniform(9, 19, 2).tolist() + rng.uniform(2, 6, 2).tolist()
        blob = 255 * np.exp(-(((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2))
        pixels = np.clip(blob + rng.normal(0, 20, (28, 28)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels, "L").save(buf, "PNG")
        yield buf.getvalue()

bodies = [open(sample, "rb").read()] if kind == "hits" else list(pngs(seed, 25_000))
def cpu(tid):  # (utime + stime) in seconds of a process or one of its threads
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = open(path).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

async def main():
    lat, errors, nxt = [], {}, 0
    stop = time.perf_counter() + duration
    async def client(s):
        nonlocal errors, nxt
        while time.perf_counter() < stop:
            body = bodies[nxt % len(bodies)]
            nxt += 1
            t = time.perf_counter()
            try:
                async with s.post(url, data=body, headers={"content-type": "image/png"}) as r:
                    await r.read()
                    error = None if r.status == 200 else f"HTTP {r.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = type(exc).__name__
            if error is None:
                lat.append(time.perf_counter() - t)
            else:
                errors[error] = errors.get(error, 0) + 1
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=10)) as s:
        c0, l0, t0 = cpu(None), cpu(pid), time.perf_counter()
        if started:
            open(started, "w").close()
        await asyncio.gather(*(client(s) for _ in range(concurrency)))
        c1, l1, t1 = cpu(None), cpu(pid), time.perf_counter()
    n, q = len(lat), statistics.quantiles(lat, n=100)
    print(json.dumps({
        "load": kind, "requests": n, "errors": sum(errors.values()), "error_kinds": errors,
        "unique_bodies": len(bodies), "sent": nxt, "rps": round(n / (t1 - t0), 1),
        "p50_ms": round(q[49] * 1e3, 2), "p99_ms": round(q[98] * 1e3, 2),
        "cpu_ms_per_req": round((c1 - c0) * 1e3 / n, 3),
        "loop_thread_cpu_ms_per_req": round((l1 - l0) * 1e3 / n, 3),
        "cpu_cores_used": round((c1 - c0) / (t1 - t0), 2),
    }))
    if kind == "misses" and nxt > len(bodies):
        print(f"warning: {nxt} requests > {len(bodies)} distinct bodies", file=sys.stderr)

asyncio.run(main())
PY
}

: >"$OUT/summary.md"
seed=$(date +%s)
for kind in $LOADS; do
  [ "$kind" = hits ] && curl -sf -o /dev/null -H 'content-type: image/png' \
    --data-binary "@$SAMPLE" "$PREDICT"   # warm the one cached entry
  echo "== $kind: clean run (${DURATION}s)" >&2
  seed=$((seed + 1))
  load "$kind" "$seed" >"$OUT/${kind}_clean.json"
  cat "$OUT/${kind}_clean.json" >&2
  echo "== $kind: profiled run (py-spy ${PROFILE_S}s at ${RATE} Hz)" >&2
  rm -f "$OUT/.started"
  seed=$((seed + 1))
  load "$kind" "$seed" "$OUT/.started" >"$OUT/${kind}_profiled.json" &
  loader=$!
  while [ ! -e "$OUT/.started" ] && kill -0 "$loader" 2>/dev/null; do sleep 0.2; done
  sleep 2  # let the load settle before sampling
  # --nonblocking: pausing the process 200 times a second (py-spy's default) cut hits
  # throughput to about a third, and the paused threads all looked busy, idle ones included.
  # --threads: the summary tells the event-loop thread from the workers by name.
  "$PYSPY" record --pid "$PID" --duration "$PROFILE_S" --rate "$RATE" --format raw \
    --nonblocking --threads --output "$OUT/$kind.txt" >"$OUT/$kind.pyspy.log" 2>&1
  wait "$loader"
  cat "$OUT/${kind}_profiled.json" >&2
  "$PYTHON" "$HERE/profile_summary.py" "$OUT/$kind.txt" --rate "$RATE" --seconds "$PROFILE_S" \
    --title "$kind" --src "${CHECKOUT:-$HERE/..}" \
    --load "$OUT/${kind}_clean.json" --load "$OUT/${kind}_profiled.json" | tee -a "$OUT/summary.md"
done
echo "raw stacks and summary in $OUT" >&2
