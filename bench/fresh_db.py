"""Runs a bench step on a database of its own each time (migrated, dropped afterwards), and
prints the median of each figure over the runs."""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable

from tests.support.databases import create_database, drop_database, migrate


def on_fresh_databases(
    prefix: str, runs: int, run: Callable[[str], dict[str, float]]
) -> list[dict[str, float]]:
    """`run(url)` `runs` times, each on a new migrated database of DATABASE_URL's server."""
    server = os.environ.get("DATABASE_URL")
    if not server:
        sys.exit('set DATABASE_URL (eval "$(scripts/services up)")')
    results = []
    for _ in range(runs):
        url = create_database(server, prefix=prefix)
        try:
            migrate(url)
            results.append(run(url))
        finally:
            drop_database(server, url)
    return results


def print_medians(results: list[dict[str, float]]) -> None:
    """One line per figure: its median over the runs."""
    for key in results[0]:
        print(f"  {key:>26}: {statistics.median(float(r[key]) for r in results):,.1f}")
