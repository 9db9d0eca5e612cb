"""What "healthy", "degraded" and "down" mean for the stack, in one place: the gateway's
`/health`, `check_health.sh` in local and in Docker mode all decide with these (stdlib only:
the launcher imports it before any virtualenv exists)."""

from __future__ import annotations

SERVICES = ("db_api", "model_api", "web_api")
"""The stack's services, in start order: the order `check_health.sh` prints them in."""
HEALTHY, DEGRADED, DOWN = "healthy", "degraded", "down"


def model_api_state(ready_status: int, ready: dict) -> str:
    """model_api from its `/health/ready` answer: down unless ready (200); degraded while it
    serves without its cache (Redis unreachable: every request is inferred again)."""
    if ready_status != 200:
        return DOWN
    return HEALTHY if ready.get("cache") == "ok" else DEGRADED
