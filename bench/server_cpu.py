"""CPU seconds the local servers (PostgreSQL, Redis, Kafka) have used, read from /proc
(Linux), so a bench can say how much of the machine the servers took per unit of work.

On a 2-core machine this is what bounds scale-out: N worker processes share the cores with
the servers, so N processes can at most reach
`cores / (worker CPU + servers' CPU per decision)` decisions a second.
"""

from __future__ import annotations

import os
from pathlib import Path

# /proc/<pid>/comm of each server (Kafka runs on the JVM).
SERVERS = {"postgres": "postgresql", "redis-server": "redis", "java": "kafka"}


def server_cpu_seconds() -> dict[str, float]:
    """Each server's CPU seconds so far (user + system, all its processes)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = dict.fromkeys(SERVERS.values(), 0.0)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
            if comm not in SERVERS:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        out[SERVERS[comm]] += (int(fields[11]) + int(fields[12])) / tick
    return out


def used_since(before: dict[str, float]) -> dict[str, float]:
    """CPU seconds each server used since `before` (a server_cpu_seconds reading); a
    server process that ended meanwhile is not counted."""
    now = server_cpu_seconds()
    return {name: max(0.0, now[name] - before.get(name, 0.0)) for name in now}
