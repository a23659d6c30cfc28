"""Webhook to delivered coupon message, end to end over real Kafka: p50 / p95.

Each round is a new customer asking 「クーポンある？」. The clock starts when the signed
webhook is sent to `tenin serve chat_agent` (gunicorn) and stops when the recording
LINE server receives the coupon message (text + QR image). In between: Kafka
`chat.inbound` → chat worker (understanding, Postgres, outbox) → relay → Kafka
`offer.requests` → decider → Kafka `offer.decisions` → chat worker → delivery loop →
LINE reply API.

The decider is either `engine` (the real campaign_engine worker, on the same Kafka,
PostgreSQL and Redis, with one active campaign and a propensity model: --model-dir, or a
small one trained here first) or `scripted` (this script answers each request at once
with a signed coupon). The chat and engine workers run as `tenin worker` processes, as
deployed (`--workers threads` runs them as threads of this process instead: one GIL for
two services, the LINE recorder and the driver). The run has a topic namespace of its
own. After the figures it prints the CPU each process of the stack used per round (from
/proc: steadier than wall-clock time on a shared machine) and where the time went, leg by
leg (bench/chat_legs.py).

The anchor, measured in the same run on the same Kafka: one record through three
produce -> consume hops (the path crosses the bus three times). Target: p50 <= 4x it.

The anchor and the rounds take turns in blocks (--block), each block run back to back:
the machine's drift during the run reaches both alike (an anchor measured once before the
rounds moved by half from one run to the next), and both are measured hot. Each round
starts as the answer to the one before arrives, while the stack still records it and
announces it. The CPU per round is counted over the rounds' blocks only.

Run: eval "$(scripts/services up)"; python bench/chat_e2e_latency.py [--rounds 200]
     [--decider engine|scripted] [--model-dir models/propensity] [--quick]
     [--workers processes|threads] [--block 50] [--relay thread|process]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bus_hops import three_bus_hops  # noqa: E402
from bench.chat_legs import leg_table  # noqa: E402
from bench.chat_rounds import Round, ratio, report, webhook_round  # noqa: E402
from bench.chat_stack import (  # noqa: E402
    CpuMeter,
    gunicorn_chat_agent,
    relay_lag,
    summary,
    worker_process,
)
from services.chat_agent.delivery.loop import RetryPolicy  # noqa: E402
from services.chat_agent.worker import CONSUMED, PRODUCED  # noqa: E402
from services.chat_agent.worker import run as run_worker  # noqa: E402
from shared.bus import broker_from_settings  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.coupons import CouponClaims, coupon_key, issue_code, round_up_to_hour  # noqa: E402
from shared.events import OFFER_DECISIONS, OFFER_REQUESTS, encode, make_event  # noqa: E402
from shared.logging import configure_logging  # noqa: E402
from shared.secret_keys import fresh_secrets  # noqa: E402
from tenin.line_recorder import LineRecorder  # noqa: E402
from tests.support.databases import create_database, drop_database, migrate  # noqa: E402
from tests.support.kafka_tools import TopicTail, delete_namespace  # noqa: E402

SECRETS = fresh_secrets()  # strong, or `tenin serve` refuses to start
SECRET = SECRETS["LINE_CHANNEL_SECRET"]
TOKEN = SECRETS["LINE_CHANNEL_ACCESS_TOKEN"]
WARM_UP = 5  # rounds before any is counted: consumers, the model, connections
BLOCK = 50  # anchor measurements, then as many rounds, in turn


def scripted_decider(settings: Settings, stop: threading.Event) -> None:
    """Answer every offer.requested at once with a signed coupon (a stand-in engine)."""
    servers = settings.kafka_bootstrap_servers or ""
    tail = TopicTail(servers, settings.topic_namespace + OFFER_REQUESTS)
    producer = broker_from_settings(settings).producer()
    key = coupon_key("bench" * 8)
    serial = 0
    answered: set[str] = set()
    try:
        while not stop.is_set():
            for request in tail.matching(lambda e: e.type == "offer.requested"):
                rid = request.payload["request_id"]
                if rid in answered:
                    continue
                answered.add(rid)
                serial += 1
                now = datetime.now(UTC)
                expires = round_up_to_hour(now + timedelta(hours=24))
                code = issue_code(key, CouponClaims(1, 0, serial, expires))
                decided = make_event(
                    "offer.decided",
                    {
                        "request_id": rid,
                        "customer_id": request.payload["customer_id"],
                        "campaign_id": "cmp-bench",
                        "offer_id": "o1",
                        "arm": "treatment",
                        "coupon": {
                            "code": code,
                            "title": "ツナマヨおにぎり",
                            "discount": {"type": "amount", "value": 30},
                            "valid_from": now.isoformat(),
                            "expires_at": expires.isoformat(),
                        },
                        "propensity": 0.9,
                        "score": 0.1,
                        "model_version": "bench",
                    },
                    key=request.key,
                    producer="bench",
                )
                producer.send(OFFER_DECISIONS, request.key, encode(decided))
                producer.flush(timeout=10)
            tail.seen.clear()
    finally:
        producer.close()
        tail.close()


def start_engine(
    settings: Settings,
    stop: threading.Event,
    model_dir: Path | None,
    scratch: Path,
    *,
    threads: bool,
) -> Path:
    """One active campaign (holdout 0) and a model; the campaign_engine's worker components
    in threads of this process with `threads`. Returns the model's directory."""
    from services.campaign_engine.bootstrap import bootstrap as engine_bootstrap
    from services.campaign_engine.campaigns.commands import change_status, create_campaign
    from services.campaign_engine.campaigns.schemas import CampaignIn
    from services.campaign_engine.worker import components, prepare
    from shared.db import unit_of_work, utcnow
    from shared.runtime import run_components

    if model_dir is None:
        from services.campaign_engine.modeling import cli as modeling_cli

        model_dir = scratch / "propensity"
        modeling_cli.train_main(["--rows", "20000", "--trees", "50", "--model-dir", str(model_dir)])
    engine = engine_bootstrap(replace(settings, model_dir=model_dir))
    broker = broker_from_settings(engine.settings)
    prepare(engine, broker)
    now = utcnow()
    body = CampaignIn.model_validate(
        {
            "name": "bench onigiri week",
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(days=7)).isoformat(),
            "offers": [
                {
                    "title": "ツナマヨおにぎり 30円引き",
                    "discount": {"type": "amount", "value": 30},
                    "applies_to": {"categories": ["onigiri"]},
                    "valid_hours": 24,
                },
                {
                    "title": "コーヒー 10%オフ",
                    "discount": {"type": "percent", "value": 10},
                    "applies_to": {"categories": ["coffee"]},
                    "valid_hours": 24,
                },
            ],
            "budget": {"max_coupons": 1_000_000},
            "caps": {"per_customer_per_day": None},
            "holdout_pct": 0.0,
            "revenue_share": {"pct": 5, "basis": "attributed"},
        }
    )
    with unit_of_work(engine.sessions) as session:
        change_status(session, create_campaign(session, body), "activate", utcnow())
    if threads:
        parts = components(engine, broker)
        threading.Thread(target=run_components, args=(parts, stop), daemon=True).start()
    return model_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--decider", choices=["scripted", "engine"], default="engine")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="40 rounds")
    parser.add_argument(
        "--block", type=int, default=BLOCK, help="anchor measurements, then rounds, in turn"
    )
    parser.add_argument(
        "--workers",
        choices=["processes", "threads"],
        default="processes",
        help="the chat and engine workers as `tenin worker` processes, as deployed (default), "
        "or as threads of this process (one GIL for both services, the recorder and driver)",
    )
    parser.add_argument(
        "--relay",
        choices=["thread", "process"],
        default="thread",
        help="where each service's outbox relay runs (TENIN_OUTBOX_RELAY; process: a "
        "`tenin relay` process per service, with --workers processes only)",
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds = 40
    if args.relay == "process" and args.workers == "threads":
        parser.error("--relay process runs the relays as processes: use --workers processes")
    server = os.environ.get("DATABASE_URL")
    if not (server and os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("REDIS_URL")):
        sys.exit('run eval "$(scripts/services up)" first')
    database = create_database(server, prefix="tenin_bench")
    migrate(database)
    secret_key = "bench-" + uuid.uuid4().hex
    namespace = f"bench-chat-{uuid.uuid4().hex[:8]}."
    stop = threading.Event()
    try:
        with LineRecorder(token=TOKEN) as line, contextlib.ExitStack() as workers:
            env = {
                "DATABASE_URL": database,
                "LINE_CHANNEL_SECRET": SECRET,
                "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
                "MESSAGING_API_BASE": line.base_url,
                "TENIN_SECRET_KEY": secret_key,
                "TENIN_LOG_LEVEL": "WARNING",
                # Topics and groups of this run alone: other runs' traffic on a shared
                # Kafka (a drop's decisions, say) never reaches this stack.
                "TENIN_TOPIC_NAMESPACE": namespace,
                "TENIN_OUTBOX_RELAY": args.relay,
            }
            settings = replace(Settings.from_env({**os.environ, **env}, service="chat_agent"))
            configure_logging("bench", "WARNING", True)
            broker_from_settings(settings).ensure_topics([*CONSUMED, *PRODUCED])
            anchor = workers.enter_context(three_bus_hops(settings))
            threads = args.workers == "threads"
            processes: dict[str, int] = {}  # CPU per round is read for each (not with threads)
            if threads:
                threading.Thread(
                    target=run_worker,
                    args=(settings, stop),
                    kwargs={"delivery_policy": RetryPolicy(base_backoff_s=0.2)},
                    daemon=True,
                ).start()
            else:
                processes["chat worker"] = workers.enter_context(
                    worker_process("chat_agent", env)
                ).pid
                if args.relay == "process":
                    for service, name in (("chat_agent", "chat"), ("campaign_engine", "engine")):
                        relay = workers.enter_context(worker_process(service, env, "relay"))
                        processes[f"{name} relay"] = relay.pid
            if args.decider == "scripted":
                threading.Thread(
                    target=scripted_decider, args=(settings, stop), daemon=True
                ).start()
            else:
                scratch = Path(tempfile.mkdtemp())
                model = start_engine(settings, stop, args.model_dir, scratch, threads=threads)
                if not threads:
                    engine_env = {**env, "TENIN_MODEL_DIR": str(model)}
                    engine = workers.enter_context(worker_process("campaign_engine", engine_env))
                    processes["engine worker"] = engine.pid
            gunicorn: list[int] = []
            with gunicorn_chat_agent(env, pids=gunicorn) as base:
                processes["webhook (gunicorn)"] = gunicorn[0]
                http = requests.Session()

                def one() -> Round:
                    return webhook_round(http, base, line, settings, SECRET, args.timeout)

                for _ in range(WARM_UP):  # consumers, the model, connections
                    one()
                # The anchor and the rounds take turns in blocks, each run back to back:
                # the machine's drift during the run reaches both alike, and both are
                # measured hot (after a pause, a hop on this VM took ~40% longer).
                cpu = CpuMeter(processes)
                hops: list[float] = []
                rounds: list[Round] = []
                while len(rounds) < args.rounds:
                    block = min(args.block, args.rounds - len(rounds))
                    hops += [anchor.measure() for _ in range(block)]
                    with cpu.counting():
                        rounds += [one() for _ in range(block)]
                print(
                    f"decider: {args.decider}; channel of the coupon messages: "
                    f"{sorted({d.channel for d in line.delivered})}"
                )
                print("\n".join(report(rounds)))
                print(summary("anchor: three bus hops", hops))
                print(
                    f"p50 webhook -> coupon = {ratio(rounds, hops):.1f}x three bus hops "
                    "(target <= 4x)"
                )
                print(cpu.per_round(args.rounds))
                print(relay_lag(database))
                if args.decider == "engine":
                    print(leg_table(database, [r.stamp for r in rounds]))
    finally:
        stop.set()
        time.sleep(1)
        drop_database(server, database)
        delete_namespace(os.environ["KAFKA_BOOTSTRAP_SERVERS"], namespace)


if __name__ == "__main__":
    main()
