"""CPU cost per Redis command of the services' client against redis-py (with hiredis).

`mlserve_common/wire/redis_pipe.py` is hand-written: one pipelined connection per worker,
hiredis to parse. The house rule keeps hand-written code only for a measured win of 10 % or
more over a well-kept library; this is that measurement. Each client runs the commands of a
cache lookup (GET of a stored answer, or MGET of the model's digest and an answer, as the
gateway does) from 32 concurrent tasks against a real redis-server, and the client process's
CPU time is divided by the command count. Clients take turns over rounds (the first
alternating); medians are printed and written to results/redis_client.json.

    PYTHONPATH=. .venv/bin/python -m bench.redis_client [--rounds 7] [--commands 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import redis.asyncio as redis_py

from harness.redis_server import RedisServer
from mlserve_common.wire.redis_pipe import RedisPipe

RESULTS = Path(__file__).with_name("results") / "redis_client.json"
TASKS = 32
VALUE = b"x" * 700  # about a stored answer


async def _drive(call, commands: int) -> float:
    """CPU seconds per command of `TASKS` tasks running `call()` `commands` times in all."""
    per_task = commands // TASKS

    async def task() -> None:
        for _ in range(per_task):
            await call()

    await call()  # connect outside the measurement
    cpu = time.process_time()
    await asyncio.gather(*(task() for _ in range(TASKS)))
    return (time.process_time() - cpu) / (per_task * TASKS)


async def _pipe(url: str, command: tuple, commands: int) -> float:
    pipe = RedisPipe(url, timeout=5)
    try:
        return await _drive(lambda: pipe.call(*command), commands)
    finally:
        await pipe.close()


async def _redis_py(url: str, command: tuple, commands: int) -> float:
    client = redis_py.Redis.from_url(url, max_connections=TASKS)
    try:
        return await _drive(lambda: client.execute_command(*command), commands)
    finally:
        await client.aclose()


async def _store(url: str) -> None:
    client = redis_py.Redis.from_url(url)
    await client.mset({"answer": VALUE, "digest": b"d" * 64})
    await client.aclose()


CLIENTS = {"redis_pipe": _pipe, "redis-py": _redis_py}
COMMANDS = {"GET": ("GET", "answer"), "MGET": ("MGET", "digest", "answer")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--commands", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(Path(folder)).start()
        try:
            asyncio.run(_store(server.url))
            samples: dict[str, dict[str, list[float]]] = {
                c: {n: [] for n in CLIENTS} for c in COMMANDS
            }
            for round_ in range(args.rounds):
                order = list(CLIENTS) if round_ % 2 == 0 else list(reversed(CLIENTS))
                for command_name, command in COMMANDS.items():
                    for name in order:
                        seconds = asyncio.run(CLIENTS[name](server.url, command, args.commands))
                        samples[command_name][name].append(seconds * 1e6)
        finally:
            server.stop()
    result = {"tasks": TASKS, "commands_per_run": args.commands, "rounds": args.rounds}
    for command_name, by_client in samples.items():
        medians = {name: round(statistics.median(v), 2) for name, v in by_client.items()}
        ratios = [
            p / o for p, o in zip(by_client["redis-py"], by_client["redis_pipe"], strict=True)
        ]
        result[command_name] = {
            "cpu_us_per_command": medians,
            "redis_py_over_pipe": round(statistics.median(ratios), 3),
        }
        print(
            f"{command_name}: redis_pipe {medians['redis_pipe']} us, redis-py "
            f"{medians['redis-py']} us CPU per command (redis-py / redis_pipe, median of "
            f"per-round ratios: {result[command_name]['redis_py_over_pipe']})"
        )
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
