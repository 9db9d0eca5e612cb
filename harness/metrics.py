"""Read Prometheus exposition text the way a query would."""

from __future__ import annotations

import re
import time
from collections.abc import Callable


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match:
            have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(match.group(2))
    return total


def settled_changes(
    read: Callable[[], str],
    before: str,
    series: list[tuple[str, dict[str, str]]],
    timeout: float = 60,
    interval: float = 1.5,
) -> tuple[float, ...]:
    """How much each of `series` (name, labels) grew since `before`, once work in flight has
    drained: read again until two reads `interval` apart agree (or `timeout` passes)."""

    def changes() -> tuple[float, ...]:
        text = read()
        return tuple(
            metric(text, n, **labels) - metric(before, n, **labels) for n, labels in series
        )

    deadline, last = time.monotonic() + timeout, None
    while (now := changes()) != last and time.monotonic() < deadline:
        last = now
        time.sleep(interval)
    return now
