"""Marketer console pages against the API calls they make, in the same run.

20 campaigns, made and activated through the campaign API, copied into the tracker as
its consumer copies them, and 100,000 decisions in the tracker's decision log (the log
the report counts; 85% issued a coupon, 10% holdout, 5% explore), spread over them. The
engine, the tracker and the console run as operators run them (`tenin serve`, gunicorn).

Measured, interleaved round by round so both see the same machine:
- page `GET /campaigns` (signed in) against its API calls on their own: the campaign list,
  then the 20 reports fetched side by side over 8 pooled connections, as the page does
  (the sequential sum is printed too, from the first 5 rounds);
- page `GET /campaigns/<id>` against the campaign, its report and its drops, one after
  another, as the page does.
Goal: a page costs at most 1.5x its API calls (the ratio of the medians).

Run (after `eval "$(scripts/services up)"`):
    python bench/console.py [--rounds 30] [--quick]   # --quick: 10 rounds
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import insert, select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.campaign_engine.campaigns.commands import snapshot  # noqa: E402
from services.campaign_engine.models import Campaign as EngineCampaign  # noqa: E402
from services.console.api_client import STALE_CONNECTION_RETRY  # noqa: E402
from services.redemption_tracker.copies import apply_campaign_snapshot  # noqa: E402
from services.redemption_tracker.models import Decision as TrackerDecision  # noqa: E402
from shared.auth import create_key  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.db import make_engine, make_session_factory, unit_of_work, utcnow  # noqa: E402
from shared.embedded import free_port  # noqa: E402
from shared.events import make_event  # noqa: E402
from shared.secret_keys import fresh_secrets  # noqa: E402
from tenin.processes import ServiceProcess  # noqa: E402
from tests.support.databases import create_database, drop_database, migrate  # noqa: E402
from tests.support.kafka_tools import delete_namespace  # noqa: E402

CAMPAIGNS = 20
DECISIONS = 100_000
GOAL = 1.5
SEQUENTIAL_ROUNDS = 5


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def campaign_body(i: int) -> dict[str, object]:
    now = utcnow()
    return {
        "name": f"bench console {i:02d}",
        "starts_at": (now - timedelta(days=14)).isoformat(),
        "ends_at": (now + timedelta(days=14)).isoformat(),
        "offers": [
            {
                "title": "50 yen off onigiri",
                "discount": {"type": "amount", "value": 50},
                "applies_to": {"categories": ["onigiri"]},
            }
        ],
        "budget": {"max_coupons": 10**6},
        "holdout_pct": 10,
        "revenue_share": {"pct": 5, "basis": "attributed"},
        "per_call_fee": 2,
    }


def seed(db_url: str, engine_url: str, key: str, decisions: int) -> list[str]:
    """The campaigns through the API, their tracker copies, and the decision log."""
    auth = {"Authorization": f"Bearer {key}"}
    ids = []
    for i in range(CAMPAIGNS):
        made = requests.post(
            f"{engine_url}/v1/campaigns", json=campaign_body(i), headers=auth, timeout=30
        )
        made.raise_for_status()
        cid = made.json()["campaign_id"]
        requests.post(
            f"{engine_url}/v1/campaigns/{cid}/activate", headers=auth, timeout=30
        ).raise_for_status()
        ids.append(cid)
    sessions = make_session_factory(make_engine(db_url, pool_size=2))
    with unit_of_work(sessions) as s:
        for cid in ids:  # what the tracker's consumer does with campaign.activated
            row = s.execute(
                select(EngineCampaign).where(EngineCampaign.campaign_id == cid)
            ).scalar_one()
            snap = snapshot(row)
            event = make_event(
                "campaign.activated",
                {"campaign_id": cid, "campaign": snap.model_dump(mode="json")},
                key=cid,
                producer="campaign_engine",
            )
            apply_campaign_snapshot(s, event)
    rng = random.Random(7)
    now = utcnow()
    rows = []
    for n in range(decisions):
        cid = ids[n % CAMPAIGNS]
        roll = rng.random()
        arm = "holdout" if roll < 0.10 else "explore" if roll < 0.15 else "treatment"
        coupon = arm != "holdout"
        rows.append(
            {
                "request_id": f"bench-{uuid.uuid4().hex}",
                "customer_id": f"c{rng.randrange(20_000)}",
                "campaign_id": cid,
                "offer_id": "o",
                "arm": arm,
                "code": f"BENCH{n:08d}" if coupon else None,
                "valid_from": now if coupon else None,
                "expires_at": now + timedelta(days=3) if coupon else None,
                "min_basket": 0 if coupon else None,
                "discount": {"type": "amount", "value": 50} if coupon else None,
                "decided_at": now - timedelta(seconds=rng.randrange(14 * 86400)),
            }
        )
    with unit_of_work(sessions) as s:
        for start in range(0, len(rows), 5000):
            s.execute(insert(TrackerDecision), rows[start : start + 5000])
    return ids


def serve(name: str, port: int, env: dict[str, str], logs: Path) -> ServiceProcess:
    argv = [sys.executable, "-m", "tenin.cli", "serve", name, "--port", str(port), "--workers", "2"]
    process = ServiceProcess(
        name, argv, env, logs / f"{name}.log", health_url=f"http://127.0.0.1:{port}/healthz"
    )
    process.start()
    return process


def signed_in(console_url: str, key: str) -> requests.Session:
    client = requests.Session()
    page = client.get(f"{console_url}/sign-in", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]  # the form has one
    answer = client.post(
        f"{console_url}/sign-in",
        data={"key": key, "csrf_token": token},
        timeout=30,
        allow_redirects=False,
    )
    assert answer.status_code == 303, answer.text[:500]
    return client


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def ok(response: requests.Response) -> requests.Response:
    response.raise_for_status()
    return response


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--decisions", type=int, default=DECISIONS)
    parser.add_argument("--quick", action="store_true", help="10 rounds")
    args = parser.parse_args()
    rounds = 10 if args.quick else args.rounds
    server = os.environ.get("DATABASE_URL")
    if not server or not os.environ.get("REDIS_URL"):
        print('needs DATABASE_URL and REDIS_URL: eval "$(scripts/services up)"', file=sys.stderr)
        return 2
    for name, value in fresh_secrets().items():  # the served processes refuse to start without
        os.environ.setdefault(name, value)
    db_url = create_database(server, prefix="tenin_bench_console")
    logs = Path(tempfile.mkdtemp(prefix="bench-console-"))
    processes: list[ServiceProcess] = []
    namespace = f"bench-console-{uuid.uuid4().hex[:6]}."
    try:
        migrate(db_url)
        settings = replace(Settings.from_env(), database_url=db_url)
        with unit_of_work(make_session_factory(make_engine(db_url, pool_size=1))) as s:
            key = create_key(s, settings.secret_key, "marketer")
        ports = {name: free_port() for name in ("campaign_engine", "redemption_tracker", "console")}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "TENIN_LOG_LEVEL": "WARNING",
            "TENIN_RATE_LIMIT_KEY_MARKETER": "100000/1000000",
            "TENIN_CAMPAIGN_ENGINE_URL": urls["campaign_engine"],
            "TENIN_REDEMPTION_TRACKER_URL": urls["redemption_tracker"],
            "TENIN_TOPIC_NAMESPACE": namespace,
        }
        processes = [serve(name, port, env, logs) for name, port in ports.items()]
        for process in processes:
            process.wait_healthy()
        started = time.perf_counter()
        ids = seed(db_url, urls["campaign_engine"], key, args.decisions)
        print(
            f"seeded {CAMPAIGNS} campaigns and {args.decisions:,} decisions in {time.perf_counter() - started:.1f}s"
        )
        measure(urls, key, ids, rounds)
    finally:
        for process in processes:
            process.stop()
        drop_database(server, db_url)
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            delete_namespace(os.environ["KAFKA_BOOTSTRAP_SERVERS"], namespace)
    return 0


def measure(urls: dict[str, str], key: str, ids: list[str], rounds: int) -> None:
    console = signed_in(urls["console"], key)
    api = requests.Session()
    api.mount("http://", HTTPAdapter(max_retries=STALE_CONNECTION_RETRY))  # as the console does
    api.headers["Authorization"] = f"Bearer {key}"
    api.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))
    fan = ThreadPoolExecutor(max_workers=8)
    engine, tracker = urls["campaign_engine"], urls["redemption_tracker"]

    def list_calls(parallel: bool) -> None:
        ok(api.get(f"{engine}/v1/campaigns", params={"limit": "200"}, timeout=30))

        def report(cid: str) -> None:
            ok(api.get(f"{tracker}/v1/campaigns/{cid}/report", timeout=30))

        if parallel:
            list(fan.map(report, ids))
        else:
            for cid in ids:
                report(cid)

    def detail_calls(cid: str) -> None:
        ok(api.get(f"{engine}/v1/campaigns/{cid}", timeout=30))
        ok(api.get(f"{tracker}/v1/campaigns/{cid}/report", timeout=30))
        ok(api.get(f"{engine}/v1/campaigns/{cid}/drops", timeout=30))

    def page(path: str) -> None:
        answer = ok(console.get(f"{urls['console']}{path}", timeout=30, allow_redirects=False))
        assert answer.status_code == 200, (path, answer.status_code)

    # warm every path once (connections, templates, caches)
    page("/campaigns")
    list_calls(True)
    page(f"/campaigns/{ids[0]}")
    detail_calls(ids[0])
    figures: dict[str, list[float]] = {
        k: [] for k in ("list_page", "list_api", "list_api_seq", "detail_page", "detail_api")
    }
    for r in range(rounds):
        cid = ids[r % len(ids)]
        figures["list_page"].append(timed(lambda: page("/campaigns")))
        figures["list_api"].append(timed(lambda: list_calls(True)))
        if r < SEQUENTIAL_ROUNDS:  # for reference only: slow, and not what the page does
            figures["list_api_seq"].append(timed(lambda: list_calls(False)))
        figures["detail_page"].append(timed(lambda cid=cid: page(f"/campaigns/{cid}")))  # type: ignore[misc]  # bound per round
        figures["detail_api"].append(timed(lambda cid=cid: detail_calls(cid)))  # type: ignore[misc]  # bound per round
    print(f"{rounds} rounds, interleaved; milliseconds")
    print(f"{'':34}{'p50':>9}{'p99':>9}")
    labels = {
        "list_page": "GET /campaigns (page)",
        "list_api": "  its API calls (8 side by side)",
        "list_api_seq": f"  its API calls (one by one, {SEQUENTIAL_ROUNDS}x)",
        "detail_page": "GET /campaigns/<id> (page)",
        "detail_api": "  its 3 API calls",
    }
    for name, label in labels.items():
        print(
            f"{label:34}{statistics.median(figures[name]):9.1f}{percentile(figures[name], 99):9.1f}"
        )
    for page_name, api_name in (("list_page", "list_api"), ("detail_page", "detail_api")):
        ratio = statistics.median(figures[page_name]) / statistics.median(figures[api_name])
        verdict = "meets" if ratio <= GOAL else "misses"
        print(f"{labels[page_name]}: {ratio:.2f}x its API calls (p50), {verdict} the {GOAL}x goal")


if __name__ == "__main__":
    sys.exit(main())
