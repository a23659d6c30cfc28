"""Helpers for the chat_agent benchmarks: the webhook app under gunicorn, the CPU its
processes use, the relay's lag, cleaning up topics, and percentiles."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests

from bench.server_cpu import server_cpu_seconds
from shared.embedded import free_port

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def gunicorn_chat_agent(
    env: dict[str, str], *, workers: int = 2, threads: int = 8, pids: list[int] | None = None
) -> Iterator[str]:
    """`tenin serve chat_agent` as a subprocess; yields its base URL (and appends the
    gunicorn master's pid to `pids`)."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tenin.cli",
            "serve",
            "chat_agent",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ],
        env={**os.environ, **env},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    if pids is not None:
        pids.append(process.pid)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(base + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise RuntimeError("chat_agent did not come up within 60 s")
        yield base
    finally:
        stop_process(process)


@contextmanager
def worker_process(
    service: str, env: dict[str, str], command: str = "worker"
) -> Iterator[subprocess.Popen[bytes]]:
    """`tenin worker <service>` (or `tenin relay <service>`) as a subprocess (stopped with
    SIGTERM at the end)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tenin.cli", command, service],
        env={**os.environ, **env},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its live children (gunicorn's
    workers), read from /proc (Linux); 0 for a process that has ended."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(proc.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(label: str, seconds: Sequence[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{label:<34} n={len(ms):<5} p50={percentile(ms, 50):7.1f} ms  "
        f"p95={percentile(ms, 95):7.1f} ms  p99={percentile(ms, 99):7.1f} ms  "
        f"max={max(ms):7.1f} ms"
    )


class CpuMeter:
    """CPU per round of each process of the stack, of this process (the driver and the LINE
    recorder) and of the servers, from /proc: what the path costs, less noisy than its
    wall-clock time on a shared machine. Only what runs inside `counting()` is counted."""

    def __init__(self, processes: dict[str, int]) -> None:
        self._processes = processes
        self._spent: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        now = {name: tree_cpu_seconds(pid) for name, pid in self._processes.items()}
        now["bench (driver, recorder)"] = time.process_time()
        for name, seconds in server_cpu_seconds().items():
            now[f"server: {name}"] = seconds
        return now

    @contextmanager
    def counting(self) -> Iterator[None]:
        """Count the CPU used meanwhile."""
        before = self._now()
        try:
            yield
        finally:
            for name, seconds in self._now().items():
                self._spent[name] = self._spent.get(name, 0.0) + seconds - before.get(name, seconds)

    def per_round(self, rounds: int) -> str:
        parts = [f"{name} {seconds * 1000 / rounds:.2f}" for name, seconds in self._spent.items()]
        return (
            "CPU ms per round: " + ", ".join(parts) + " (servers: everyone's use of them meanwhile)"
        )


def relay_lag(database: str) -> str:
    """Commit-to-published of the outbox rows of the run (sent_at - created_at), per service."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database)
    lines = []
    try:
        with engine.connect() as conn:
            for schema in ("chat_agent", "campaign_engine"):
                lags = [
                    float(row[0])
                    for row in conn.execute(
                        text(
                            "SELECT extract(epoch FROM sent_at - created_at) "
                            f"FROM {schema}.outbox WHERE sent_at IS NOT NULL"
                        )
                    )
                ]
                if lags:
                    lines.append(summary(f"outbox relay lag, {schema}", lags))
    finally:
        engine.dispose()
    return "\n".join(lines)
