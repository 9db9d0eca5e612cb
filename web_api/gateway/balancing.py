"""Which model_api worker, and which replica address, the gateway's next request goes to.

The pool in `upstream.py` keeps the connections; this module only decides, from what it is
told. It holds no sockets, starts nothing and reads no clock (the time comes in as `now`),
so every choice can be tested directly, with plain values.

- `WorkerBalance`: model_api names the worker process that answered (`x-mlserve-worker`).
  Of the idle connections to an address, a request takes one to the worker with the fewest
  requests under way from here, of those the one sent to least recently (then the most
  recently used connection). Taking the most recently used connection alone pinned each
  group of clients answered together to one connection, and so to one worker: one worker
  could do most of the work while the other idled.
- `AddressRotation`: requests take a replica's addresses in turn; one that refused a
  connection is left out for `DOWN_SECONDS` (unless none is left), and the others are
  offered as fallbacks in order.
"""

from __future__ import annotations

from collections.abc import Sequence

Address = tuple[str, int]
Worker = bytes | None
"""A worker's name as model_api sent it; None for a connection that has not answered yet."""

DOWN_SECONDS = 2.0
"""How long an address that refused a connection is left out (unless it is the only one)."""

MAX_WORKERS_REMEMBERED = 1024
"""Past this many workers, the record of when each was last sent to starts over: workers
replaced over a long life (new process names) must not grow it without end."""


class WorkerBalance:
    """Requests under way and the latest send, per worker; picks the worker to send to next.

    The pool calls `sent` as a request goes out on a connection, and `done` with the same
    worker when its exchange ends, however it ends. The worker is the one the connection
    had when the request went out: a fresh connection's first answer names it, but the
    request was counted under None.
    """

    __slots__ = ("_under_way", "_sent_at", "_sends")

    def __init__(self) -> None:
        self._under_way: dict[Worker, int] = {}  # requests sent and not done, per worker
        self._sent_at: dict[Worker, int] = {}  # per worker: the number of its last send
        self._sends = 0

    def sent(self, worker: Worker) -> None:
        """A request went out to `worker`."""
        self._under_way[worker] = self._under_way.get(worker, 0) + 1
        self._sends += 1
        if len(self._sent_at) > MAX_WORKERS_REMEMBERED:
            self._sent_at.clear()
        self._sent_at[worker] = self._sends

    def done(self, worker: Worker) -> None:
        """A request to `worker` is over (answered, failed or cancelled)."""
        left = self._under_way[worker] - 1
        if left:
            self._under_way[worker] = left
        else:
            del self._under_way[worker]

    def pick(self, workers: Sequence[Worker]) -> int:
        """The index in `workers` (one per idle connection, most recently used last) to send
        to: the fewest requests under way, then the one sent to least recently (a worker never
        sent to first), then the most recently used connection. `workers` must not be empty.
        """
        under_way, sent_at = self._under_way, self._sent_at
        best = len(workers) - 1
        worker = workers[best]
        best_key = (under_way.get(worker, 0), sent_at.get(worker, 0))
        for index in range(best - 1, -1, -1):
            worker = workers[index]
            key = (under_way.get(worker, 0), sent_at.get(worker, 0))
            if key < best_key:
                best, best_key = index, key
        return best

    def under_way(self, worker: Worker) -> int:
        """Requests sent to `worker` and not done yet."""
        return self._under_way.get(worker, 0)


class AddressRotation:
    """The next address in turn, skipping those marked down, and the others to fall back on."""

    __slots__ = ("_down_until", "_turn", "down_seconds")

    def __init__(self, down_seconds: float = DOWN_SECONDS) -> None:
        self.down_seconds = down_seconds
        self._down_until: dict[Address, float] = {}
        self._turn = 0

    def pick(self, addresses: Sequence[Address], now: float) -> tuple[Address, list[Address]]:
        """The next of `addresses` not down at `now` (all of them if every one is), and the
        other live ones, in the order that follows it. `addresses` must not be empty."""
        down_until = self._down_until
        live = [a for a in addresses if down_until.get(a, 0.0) <= now] or list(addresses)
        self._turn += 1
        index = self._turn % len(live)
        return live[index], live[index + 1 :] + live[:index]

    def mark_down(self, address: Address, now: float) -> None:
        """`address` refused a connection at `now`: leave it out for `down_seconds`."""
        self._down_until[address] = now + self.down_seconds

    def is_down(self, address: Address, now: float) -> bool:
        return self._down_until.get(address, 0.0) > now
