"""What the services share, in three packages by what they depend on.

- `runtime`: the serving runtime on uvicorn and Starlette (the server and its workers, the
  HTTP protocol's limits, the hot path, bodies, errors, request ids, metrics).
- `wire`: the formats the gateway and model_api both read and write (cache keys, answers, the
  batch format, V2 bodies, image formats, numbers) and the Redis client.
- `stdlib_only`: the standard library alone, for `stackctl` and the container checks, which
  run before any virtual environment exists (a test imports it with `python -I -S`).
"""
