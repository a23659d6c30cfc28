"""Training from N logged decisions on PostgreSQL: wall time (join, fit, export) and peak memory.

1. Simulates decisions as the engine logs them (modeling/simulated_log.py: features of
   every candidate, scores, propensity, arm, reason; redemptions and sales drawn from the
   hidden truth) and COPYs N of them into a scratch schema, in chunks of 50,000. Simulating
   is slow (~2 ms a decision here), so only `--distinct` (100,000) are simulated and the
   rest repeat them under new ids, customers and times: the rows, bytes and work are real.
2. Measures what the decision log costs there (pg_total_relation_size, pg_column_size).
3. Trains the propensity model and the uplift pair from it (modeling/from_logs.py) in a
   child process, so its peak RSS (ru_maxrss) is the training's alone, not the generator's.

    source /tmp/svc.env
    .venv/bin/python bench/train_from_logs.py --decisions 1000000
    .venv/bin/python bench/train_from_logs.py --decisions 20000 --json out.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import Connection  # noqa: E402

from migrations.metadata import target_metadata  # noqa: E402
from services.campaign_engine.modeling.dataset import SimWorld  # noqa: E402
from services.campaign_engine.modeling.from_logs import Kind, train_from_logs  # noqa: E402
from services.campaign_engine.modeling.simulated_log import SimulatedLog, simulated_log  # noqa: E402

START = datetime(2026, 9, 1, tzinfo=UTC)
SPAN = timedelta(days=28)
TABLES = ("decisions", "redemptions_seen", "customer_sales", "model_versions", "model_promotions")
CHUNK = 50_000


def say(msg: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {msg}", file=sys.stderr, flush=True)


def _say_kind(kind: str, msg: str) -> None:
    say(f"[{kind}] {msg}")


def _copy(conn: Connection, schema: str, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    raw = conn.connection.driver_connection
    if raw is None:
        raise RuntimeError("the connection is closed")
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY {schema}.{table} ({', '.join(cols)}) FROM STDIN") as cp,
    ):
        for row in rows:
            cp.write_row([json.dumps(v) if isinstance(v, list | dict) else v for v in row.values()])


def _replica(base: SimulatedLog, copy: int, shift: timedelta, size: int) -> SimulatedLog:
    """The first `size` decisions of a base chunk again under new ids, `shift` later."""
    kept = base.decisions[:size]
    codes = {d["coupon_code"] for d in kept}
    customers = {d["customer_id"] for d in kept}

    def moved(
        rows: list[dict[str, Any]], ids: tuple[str, ...], times: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        return [
            {
                **r,
                **{k: None if r[k] is None else f"{r[k]}-{copy}" for k in ids},
                **{k: None if r[k] is None else r[k] + shift for k in times},
            }
            for r in rows
        ]

    decisions = moved(
        kept, ("request_id", "customer_id", "coupon_code"), ("expires_at", "decided_at")
    )
    for d in decisions:
        d["decision_id"] = f"{copy:08x}{d['decision_id'][8:]}"
    return SimulatedLog(
        decisions,
        moved(
            [r for r in base.redemptions if r["coupon_code"] in codes],
            ("coupon_code", "transaction_id"),
            ("redeemed_at",),
        ),
        moved(
            [x for x in base.sales if x["customer_id"] in customers],
            ("transaction_id", "customer_id"),
            ("occurred_at",),
        ),
    )


def load(url: str, schema: str, n: int, seed: int, distinct: int) -> dict[str, Any]:
    """Create the scratch schema and fill it with n decisions (`distinct` of them simulated)."""
    db = create_engine(url)
    t0 = time.perf_counter()
    with db.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        scratch = conn.execution_options(schema_translate_map={"campaign_engine": schema})
        tables = [target_metadata.tables[f"campaign_engine.{t}"] for t in TABLES]
        target_metadata.create_all(scratch, tables=tables)
    world = SimWorld.create(max(2000, min(distinct // 10, 100_000)), seed)
    chunks = (n + CHUNK - 1) // CHUNK
    bases: list[SimulatedLog] = []
    for c in range(chunks):
        size = min(CHUNK, n - c * CHUNK)
        if len(bases) * CHUNK < min(distinct, n):
            bases.append(
                simulated_log(size, seed * 10_000 + c, START, span=SPAN / chunks, world=world)
            )
            say(f"simulated {sum(len(b.decisions) for b in bases):,} distinct decisions")
        part = _replica(bases[c % len(bases)], c, SPAN * (c / chunks), size)
        with db.begin() as conn:
            _copy(conn, schema, "decisions", part.decisions)
            _copy(conn, schema, "redemptions_seen", part.redemptions)
            _copy(conn, schema, "customer_sales", part.sales)
        say(f"loaded {(c + 1) * CHUNK if c + 1 < chunks else n:,} / {n:,} decisions")
    with db.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("decisions", "customer_sales"):
            conn.execute(text(f"VACUUM ANALYZE {schema}.{table}"))
        measured = conn.execute(
            text(f"""
            SELECT count(*), pg_total_relation_size('{schema}.decisions'),
                   pg_relation_size('{schema}.decisions'), avg(pg_column_size(d.*)),
                   avg(pg_column_size(d.features)), avg(pg_column_size(d.candidates)),
                   pg_total_relation_size('{schema}.customer_sales')::float
                       / greatest(1, (SELECT count(*) FROM {schema}.customer_sales))
            FROM {schema}.decisions d""")
        ).one()
    db.dispose()
    count, total, heap, row, feats, cands, per_sale = measured
    return {
        "decisions": int(count),
        "load_s": round(time.perf_counter() - t0, 1),
        "total_bytes": int(total),
        "bytes_per_decision_total": round(total / count, 1),
        "bytes_per_decision_heap": round(heap / count, 1),
        "avg_row_bytes": round(float(row), 1),
        "avg_features_bytes": round(float(feats), 1),
        "avg_candidates_bytes": round(float(cands), 1),
        "million_decisions_mib": round(total / count * 1e6 / 2**20, 1),
        "bytes_per_sale_total": round(float(per_sale), 1),
    }


def train(url: str, schema: str, seed: int) -> dict[str, Any]:
    """Both kinds from the scratch schema; timings from their cards, peak RSS of this process."""
    db = create_engine(url)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        kinds: tuple[Kind, ...] = ("propensity", "uplift")
        for kind in kinds:
            t0 = time.perf_counter()
            with db.begin() as conn:
                trained = train_from_logs(
                    conn,
                    kind=kind,
                    since=START,
                    until=START + SPAN,
                    model_dir=Path(tmp) / kind,
                    seed=seed,
                    schema=schema,
                    progress=functools.partial(_say_kind, kind),
                    now=START + SPAN + timedelta(days=30),
                )
            out[kind] = {
                "version": trained.version,
                "rows": trained.card["rows"],
                "wall_s": round(time.perf_counter() - t0, 1),
                "timings": trained.card["timings"],
                "metrics": trained.card["metrics"],
            }
            say(f"[{kind}] done in {out[kind]['wall_s']}s")
    db.dispose()
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--decisions", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--distinct",
        type=int,
        default=100_000,
        help="decisions actually simulated; the rest repeat them under new ids and times",
    )
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    ap.add_argument("--schema", default="bench_learnlog")
    ap.add_argument("--keep", action="store_true", help="keep the scratch schema afterwards")
    ap.add_argument("--train-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.database_url:
        print("DATABASE_URL is not set (source /tmp/svc.env)", file=sys.stderr)
        return 2
    if args.train_only:
        print(json.dumps(train(args.database_url, args.schema, args.seed)))
        return 0
    say(f"simulating and loading {args.decisions:,} decisions into {args.schema}")
    result: dict[str, Any] = {
        "storage": load(args.database_url, args.schema, args.decisions, args.seed, args.distinct)
    }
    say(f"decision log: {json.dumps(result['storage'])}")
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--train-only",
            "--schema",
            args.schema,
            "--database-url",
            args.database_url,
            "--seed",
            str(args.seed),
        ],
        capture_output=False,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    result["training"] = json.loads(child.stdout.strip().splitlines()[-1])
    if not args.keep:
        db = create_engine(args.database_url)
        with db.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {args.schema} CASCADE"))
        db.dispose()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
