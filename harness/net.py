"""What the kernel says about processes and loopback connections (through psutil)."""

from __future__ import annotations

import contextlib

import psutil


def established_connections(port: int) -> int:
    """Connections in ESTABLISHED state whose server side is `port`."""
    return sum(
        1
        for conn in psutil.net_connections("tcp")
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_ESTABLISHED
    )


def process_tree_rss(pid: int) -> int:
    """Resident memory, in bytes, of a process and all its descendants."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total


def port_of(url: str) -> int:
    """The port of a `http://host:port` URL."""
    return int(url.rsplit(":", 1)[1])
