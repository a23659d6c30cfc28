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
own. After the figures it prints where the time went, leg by leg (bench/chat_legs.py).

The anchor, measured in the same run on the same Kafka: one record through three
produce -> consume hops (the path crosses the bus three times). Target: p50 <= 4x it.

Run: eval "$(scripts/services up)"; python bench/chat_e2e_latency.py [--rounds 200]
     [--decider engine|scripted] [--model-dir models/propensity] [--quick]
     [--workers processes|threads]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chat_legs import leg_table  # noqa: E402
from bench.chat_stack import gunicorn_chat_agent, summary, worker_process  # noqa: E402
from services.chat_agent.delivery.loop import RetryPolicy  # noqa: E402
from services.chat_agent.line.events import customer_id_for  # noqa: E402
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
from tests.support.kafka_tools import TopicTail  # noqa: E402
from tests.support.line_payloads import signed_webhook, text_event, user_id  # noqa: E402

SECRETS = fresh_secrets()  # strong, or `tenin serve` refuses to start
SECRET = SECRETS["LINE_CHANNEL_SECRET"]
TOKEN = SECRETS["LINE_CHANNEL_ACCESS_TOKEN"]


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


def three_bus_hops(settings: Settings, rounds: int) -> list[float]:
    """The anchor: seconds for one record to cross three produce -> consume hops on Kafka.

    This process produces to the first topic; two forwarding threads (each a consumer and
    a producer that waits for acks=all, as the relay does) pass it on; this process reads
    the third. The chat-to-coupon path crosses the bus three times in the same way
    (chat.inbound, offer.requests, offer.decisions), so 4x this is its target. Consumers
    are assigned their partition directly: a group's join is start-up, not a hop.
    """
    from kafka import KafkaConsumer, TopicPartition

    # The topics are named in full here (the run's namespace, then hops.N), so the raw
    # consumers below and the broker's producers agree on them.
    broker = broker_from_settings(replace(settings, topic_namespace=""))
    servers = settings.kafka_bootstrap_servers or ""
    topics = [f"{settings.topic_namespace}hops.{i}" for i in range(3)]
    broker.ensure_topics(topics, partitions=1)
    stop = threading.Event()

    def reader(topic: str) -> Any:
        consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        return consumer

    def forward(source: str, target: str) -> None:
        consumer, producer = reader(source), broker.producer()
        try:
            while not stop.is_set():
                for records in consumer.poll(timeout_ms=100).values():
                    for r in records:
                        producer.send(target, r.key.decode(), r.value)
                        producer.flush(timeout=10)
        finally:
            consumer.close()
            producer.close()

    for source, target in zip(topics, topics[1:], strict=False):
        threading.Thread(target=forward, args=(source, target), daemon=True).start()
    consumer, producer = reader(topics[-1]), broker.producer()

    def hop(value: bytes, limit_s: float) -> bool:
        producer.send(topics[0], value.decode(), value)
        producer.flush(timeout=10)
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=100).values():
                if any(r.value == value for r in records):
                    return True
        return False

    seconds: list[float] = []
    try:
        for i in range(rounds + 5):  # the first rounds warm up connections and metadata
            started = time.time()
            if not hop(f"r{i}".encode(), 60.0):
                raise SystemExit("the bus-hop anchor lost a record")
            if i >= 5:
                seconds.append(time.time() - started)
    finally:
        stop.set()
        consumer.close()
        producer.close()
    return seconds


def delete_topics(servers: str, namespace: str) -> None:
    """Remove this run's topics (their names start with its namespace)."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=servers, client_id="bench-cleanup")
    try:
        mine = [t for t in admin.list_topics() if t.startswith(namespace)]
        if mine:
            admin.delete_topics(mine)
    finally:
        admin.close()


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
        "--workers",
        choices=["processes", "threads"],
        default="processes",
        help="the chat and engine workers as `tenin worker` processes, as deployed (default), "
        "or as threads of this process (one GIL for both services, the recorder and driver)",
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds = 40
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
            }
            settings = replace(Settings.from_env({**os.environ, **env}, service="chat_agent"))
            configure_logging("bench", "WARNING", True)
            broker_from_settings(settings).ensure_topics([*CONSUMED, *PRODUCED])
            # The anchor first, on the same Kafka, before the stack adds its own load.
            hops = three_bus_hops(settings, args.rounds)
            threads = args.workers == "threads"
            if threads:
                threading.Thread(
                    target=run_worker,
                    args=(settings, stop),
                    kwargs={"delivery_policy": RetryPolicy(base_backoff_s=0.2)},
                    daemon=True,
                ).start()
            else:
                workers.enter_context(worker_process("chat_agent", env))
            if args.decider == "scripted":
                threading.Thread(
                    target=scripted_decider, args=(settings, stop), daemon=True
                ).start()
            else:
                scratch = Path(tempfile.mkdtemp())
                model = start_engine(settings, stop, args.model_dir, scratch, threads=threads)
                if not threads:
                    engine_env = {**env, "TENIN_MODEL_DIR": str(model)}
                    workers.enter_context(worker_process("campaign_engine", engine_env))
            with gunicorn_chat_agent(env) as base:
                http = requests.Session()
                e2e: list[float] = []
                acks: list[float] = []
                without: list[float] = []
                stamped: list[tuple[str, float, float]] = []
                for round_no in range(args.rounds + 5):
                    user = user_id()
                    event = text_event(user, "クーポンある？")
                    line.own_reply_token(event["replyToken"], user)
                    body, headers = signed_webhook(SECRET, [event])
                    started = time.time()
                    response = http.post(base + "/webhooks/line", data=body, headers=headers)
                    acked = time.time()
                    assert response.status_code == 200, response.text
                    deadline = time.monotonic() + args.timeout
                    got: list[Any] = []
                    while not got and time.monotonic() < deadline:
                        # The recorder stamps the arrival itself, so looking every 10 ms
                        # does not change the figure, and leaves the GIL to the stack.
                        time.sleep(0.01)
                        got = line.delivered_to(user)
                    if not got:
                        raise SystemExit(f"round {round_no}: no answer within {args.timeout}s")
                    coupon = any(m["type"] == "image" for m in got[0].messages)
                    if round_no >= 5:  # the first rounds warm up consumers and the model
                        (e2e if coupon else without).append(got[0].at - started)
                        acks.append(acked - started)
                        customer = customer_id_for(settings.pseudonym_key, user)
                        stamped.append((customer, started, got[0].at))
                print(
                    f"decider: {args.decider}; channel of the coupon messages: "
                    f"{sorted({d.channel for d in line.delivered})}"
                )
                print(summary("webhook ack", acks))
                print(summary("webhook -> coupon delivered", e2e))
                if without:
                    print(summary("webhook -> no-coupon answer", without))
                print(summary("anchor: three bus hops", hops))
                ratio = statistics.median(e2e) / statistics.median(hops) if e2e else float("nan")
                print(f"p50 webhook -> coupon = {ratio:.1f}x three bus hops (target <= 4x)")
                print(relay_lag(database))
                if args.decider == "engine":
                    print(leg_table(database, stamped))
    finally:
        stop.set()
        time.sleep(1)
        drop_database(server, database)
        delete_topics(os.environ["KAFKA_BOOTSTRAP_SERVERS"], namespace)


if __name__ == "__main__":
    main()
