"""Webhook acknowledgement latency of chat_agent: p50 / p99 as LINE would see it.

Runs `tenin serve chat_agent` (gunicorn, gthread) against the real Kafka and Redis of
`eval "$(scripts/services up)"` and posts signed LINE webhooks (one text event each)
over keep-alive connections; the time is from sending the request to reading the 200,
which the endpoint only answers once Kafka acknowledged the event (acks=all).

Run: python bench/webhook_latency.py [--requests 2000] [--concurrency 1,8]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chat_stack import gunicorn_chat_agent, summary  # noqa: E402
from shared.secret_keys import fresh_secrets  # noqa: E402
from tests.support.line_payloads import signed_webhook, text_event, user_id  # noqa: E402

SECRETS = fresh_secrets()  # strong, or `tenin serve` refuses to start
SECRET = SECRETS["LINE_CHANNEL_SECRET"]


def run_load(base: str, total: int, concurrency: int) -> list[float]:
    """Post `total` webhooks from `concurrency` threads; returns each call's seconds."""
    timings: list[float] = []
    lock = threading.Lock()
    users = [user_id() for _ in range(50)]
    per_thread = total // concurrency

    def worker(n: int) -> None:
        session = requests.Session()
        local = []
        for i in range(per_thread):
            body, headers = signed_webhook(SECRET, [text_event(users[(n + i) % 50], "hello")])
            started = time.perf_counter()
            response = session.post(base + "/webhooks/line", data=body, headers=headers)
            local.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"webhook answered {response.status_code}: {response.text}")
        with lock:
            timings.extend(local)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,8")
    args = parser.parse_args()
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"):
        if not os.environ.get(name):
            sys.exit(f'{name} is not set: run eval "$(scripts/services up)" first')
    env = {
        **SECRETS,
        "TENIN_LOG_LEVEL": "WARNING",
    }
    with gunicorn_chat_agent(env) as base:
        run_load(base, 100, 4)  # warm up: producers connect, metadata is fetched
        print(f"chat_agent webhook under gunicorn (2 workers x 8 threads), {base}")
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            started = time.perf_counter()
            timings = run_load(base, args.requests, concurrency)
            elapsed = time.perf_counter() - started
            print(
                summary(f"ack latency, {concurrency} client(s)", timings)
                + f"  ({len(timings) / elapsed:,.0f} req/s)"
            )


if __name__ == "__main__":
    main()
