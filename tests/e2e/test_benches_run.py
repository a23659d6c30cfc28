"""The issue-12 benches, run at tiny sizes on the real PostgreSQL, Redis and Kafka: each one
finishes and prints its headline figures as numbers.

Nothing else runs bench/, so a bench could break unseen (bench/decision_anchor.py once
fell behind a Lua script that had grown a key). Each bench runs as a subprocess, as
`python bench/X.py` is run by hand. Speed is what the benches measure, not what this
module tests: no figure is compared with a target, and no run is timed beyond a
generous limit that stops a hung bench.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
LIMIT_S = 240  # a bench that runs longer is hung (pytest-timeout stops the test at 300)
GRACE_S = 30  # after SIGINT: time to drop its scratch database and topics
NUMBER = r"[ \t]*(nan|-?inf|-?\d[\d,]*(?:\.\d+)?)"


@dataclass(frozen=True)
class Bench:
    """A bench script, its tiny-size arguments, and the output it must print: each
    headline is a fragment of a line, `{}` where a figure stands."""

    script: str
    args: tuple[str, ...]
    headlines: tuple[str, ...]

    def __str__(self) -> str:
        return self.script.removesuffix(".py")


BENCHES = [
    Bench(
        "decision_latency.py",
        ("--requests", "300", "--customers", "100", "--runs", "1"),
        (
            "median of 1 runs: worker {} decisions/s per process",
            "p50 {} ms, p99 {} ms",
            "anchor {} decisions/s; ratio {}%",
        ),
    ),
    Bench(
        "decision_latency.py",
        ("--requests", "300", "--customers", "100", "--runs", "1", "--relay", "process"),
        (
            "median of 1 runs: worker {} decisions/s per process",
            "relay process: CPU {} ms per decision; the outbox was all sent {} ms after",
        ),
    ),
    Bench(
        "scale_out.py",
        ("--requests", "300", "--customers", "100", "--runs", "1", "--processes", "1", "2"),
        (
            "1 process(es): {} decisions/s = {}x 1 process(es)",
            "2 process(es): {} decisions/s = {}x 1 process(es)",
        ),
    ),
    Bench(
        "drop.py",
        ("--followers", "300", "--runs", "1", "--timeout", "120"),
        (
            "decided: {}",
            "done: {}",
            "decisions/s (median) : {}",
            "pushes/s (median) : {} = {} x the channel's rate",
        ),
    ),
    Bench(
        "drop_pushes.py",
        ("--pushes", "300", "--runs", "1"),
        ("queue_per_s: {}", "pushes/s (median): {} = {} x the channel's rate"),
    ),
    Bench(
        "pos_ingest.py",
        ("--batches", "3", "--batch-size", "100", "--singles", "20", "--threads", "1"),
        (
            "ingest through the app: {} transactions/s",
            "raw COPY of the same rows: {} transactions/s",
            "ratio: {}% of raw COPY",
            "1 request thread(s): {} requests/s",
        ),
    ),
    Bench(
        "chat_e2e_latency.py",
        ("--rounds", "5"),
        (
            "webhook -> coupon delivered n={} p50={} ms",
            "anchor: three bus hops n={} p50={} ms",
            "p50 webhook -> coupon = {}x three bus hops",
        ),
    ),
]


def run_bench(bench: Bench, services: dict[str, str]) -> str:
    """Run `python bench/<script> <args>` from the repo root; its stdout, once it exits 0."""
    command = [sys.executable, f"bench/{bench.script}", *bench.args]
    # A session of its own, so a hung bench is stopped together with the workers it started.
    with subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, **services},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=LIMIT_S)
        except subprocess.TimeoutExpired:
            out, err = _stop(process)
            pytest.fail(
                f"{' '.join(command)} still running after {LIMIT_S} s\n{out[-3000:]}\n{err[-3000:]}"
            )
    assert process.returncode == 0, f"{' '.join(command)}\n{out[-3000:]}\n{err[-3000:]}"
    return out


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGINT the bench's process group (its `finally` cleans up), SIGKILL it if it lingers."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.communicate(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.communicate()


def figures(output: str, headline: str) -> list[float]:
    """The figures of the first line that holds `headline` (`{}` a number, any spacing)."""
    literal = [re.escape(part).replace(r"\ ", r"[ \t]*") for part in headline.split("{}")]
    found = re.search(NUMBER.join(literal), output)
    assert found, f"no line like {headline!r} in the output:\n{output[-3000:]}"
    return [float(group.replace(",", "")) for group in found.groups()]


@pytest.mark.parametrize("bench", BENCHES, ids=str)
def test_the_bench_runs_and_prints_its_figures(bench: Bench, real_services: dict[str, str]) -> None:
    output = run_bench(bench, real_services)
    for headline in bench.headlines:
        for figure in figures(output, headline):
            assert math.isfinite(figure) and figure > 0, f"{headline!r}: {figure}\n{output[-3000:]}"
