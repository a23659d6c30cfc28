"""Command-line options of `tenin demo`."""

from __future__ import annotations

import argparse
from pathlib import Path

from tenin.demo.runner import DemoOptions, run_demo


def main(argv: list[str]) -> int:
    """Parse options and run the demo; returns an exit code."""
    parser = argparse.ArgumentParser(prog="tenin demo", description=__doc__)
    parser.add_argument("--customers", type=int, default=300, help="simulated customers (300)")
    parser.add_argument("--days", type=int, default=7, help="simulated days (7)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (7)")
    parser.add_argument(
        "--holdout-pct", type=float, default=20.0, help="holdout share in percent (20)"
    )
    parser.add_argument("--out", type=Path, default=Path("."), help="where report.html goes (.)")
    parser.add_argument(
        "--against-services",
        action="store_true",
        help="use DATABASE_URL, REDIS_URL and KAFKA_BOOTSTRAP_SERVERS instead of the embedded default",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--weeks", type=int, default=None, help="with --retrain: simulated weeks of the loop"
    )
    parser.add_argument(
        "--retrain", action="store_true", help="the learning loop demo (docs/learning.md)"
    )
    parser.add_argument("--decisions-per-week", type=int, default=20_000, help="(20,000)")
    parser.add_argument(
        "--live",
        action="store_true",
        help="with --weeks --retrain: drive each week through the running services (--customers)",
    )
    parser.add_argument(
        "--seconds-per-day",
        type=float,
        default=20.0,
        help="with --live: wall seconds one simulated day takes (20)",
    )
    args = parser.parse_args(argv)
    if args.live:
        from tenin.demo.weeks_live import live_main

        return live_main(parser, args)
    if args.retrain or args.weeks is not None:
        from tenin.demo.weeks import weeks_main

        return weeks_main(parser, args)
    options = DemoOptions(
        customers=args.customers,
        days=args.days,
        seed=args.seed,
        holdout_pct=args.holdout_pct,
        out_dir=args.out,
        against_services=args.against_services,
        progress=not args.no_progress,
    )
    return run_demo(options)
