"""Explanation latency: GET /v1/decisions/{id}/explanation, first (computed) and again (cached).

Decisions are made by the engine's own decision path (real PostgreSQL and Redis, the shipped
ONNX model) for customers with varied histories; the explanation is then asked for each
through the served app (key check included). The anchor, measured in the same run, is the bare
read of the decision row by primary key.

Run (after `eval "$(scripts/services up)"`):
    python bench/explanation_latency.py [--decisions 300]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.campaign_engine.app import create_app  # noqa: E402
from services.campaign_engine.bootstrap import Engine, bootstrap  # noqa: E402
from services.campaign_engine.campaigns.commands import change_status, create_campaign  # noqa: E402
from services.campaign_engine.campaigns.schemas import CampaignIn  # noqa: E402
from services.campaign_engine.features.store import CustomerFeatureStore  # noqa: E402
from services.campaign_engine.models import Decision  # noqa: E402
from shared.auth import create_key  # noqa: E402
from shared.config import DEFAULT_MODEL_DIR, Settings  # noqa: E402
from shared.db import make_engine, unit_of_work, utcnow  # noqa: E402
from shared.events import make_event  # noqa: E402
from shared.model.scoring import PropensityScorer  # noqa: E402
from tests.support.databases import create_database, drop_database, migrate  # noqa: E402

OFFERS = [
    ("50 yen off onigiri", "amount", 50, "onigiri", 0),
    ("10% off bento", "percent", 10, "bento", 500),
    ("free coffee with a sandwich", "free_item", 150, "coffee", 400),
    ("30 yen off sweets", "amount", 30, "sweets", 0),
]
INTENTS = ["hungry", "thirsty", "craving_sweet", "coffee", "deal_seeking", "greeting"]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def offers_body() -> list[dict[str, object]]:
    """The four offers, as the campaign API takes them."""
    return [
        {
            "title": title,
            "discount": {"type": kind, "value": value},
            "applies_to": {"categories": [category]},
            "min_basket": min_basket,
            "valid_hours": 72,
        }
        for title, kind, value, category, min_basket in OFFERS
    ]


def seed_campaign(engine: Engine) -> None:
    now = utcnow()
    body = {
        "name": "bench explanations",
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "offers": offers_body(),
        "budget": {"max_coupons": 10**6},
        "caps": {"per_customer_per_day": None, "per_customer_total": None},
        "holdout_pct": 10,
        "revenue_share": {"pct": 5, "basis": "attributed"},
    }
    with unit_of_work(engine.sessions) as session:
        campaign = create_campaign(session, CampaignIn.model_validate(body))
        change_status(session, campaign, "activate", now)


def decide_many(engine: Engine, n: int, rng: random.Random) -> list[str]:
    ids = []
    now = utcnow().timestamp()
    store = engine.features
    assert isinstance(store, CustomerFeatureStore)  # the bench seeds Redis, as the demo does
    for _ in range(n):
        customer = f"c_{uuid.uuid4().hex[:16]}"
        sales = rng.randint(0, 40)
        store.load_aggregates(
            customer,
            {
                "sale_count": sales,
                "sale_total": sales * rng.uniform(300, 1500),
                "first_sale_ts": now - rng.uniform(14, 90) * 86400,
                "last_sale_ts": now - rng.uniform(0, 20) * 86400,
                f"cat:{rng.choice(OFFERS)[3]}": rng.randint(0, sales),
                f"hb:{rng.randint(0, 5)}": rng.randint(0, sales),
                "follow_ts": now - rng.uniform(1, 365) * 86400,
            },
        )
        envelope = make_event(
            "offer.requested",
            {
                "request_id": str(uuid.uuid4()),
                "customer_id": customer,
                "context": {
                    "intent": rng.choice(INTENTS),
                    "sentiment": rng.uniform(-1, 1),
                    "language": "ja",
                    "local_hour": rng.randint(6, 23),
                    "weekday": rng.randint(0, 6),
                },
            },
            key=customer,
            producer="bench",
        )
        decision = engine.decide(envelope)
        if decision is not None:
            ids.append(decision.decision_id)
    return ids


@contextmanager
def scratch_engine(prefix: str) -> Iterator[Engine]:
    """An engine on a freshly migrated scratch database (dropped afterwards) and the shipped model."""
    server = os.environ["DATABASE_URL"]
    url = create_database(server, prefix=prefix)
    engine = None
    try:
        migrate(url)
        settings = replace(Settings.from_env(), database_url=url, model_dir=DEFAULT_MODEL_DIR)
        scorer = PropensityScorer(DEFAULT_MODEL_DIR)
        engine = bootstrap(settings, db=make_engine(url, pool_size=5), scorer=scorer)
        yield engine
    finally:
        if engine is not None:
            engine.db.dispose()
        drop_database(server, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=300)
    args = parser.parse_args()
    with scratch_engine("tenin_bench_expl") as engine:
        settings = engine.settings
        seed_campaign(engine)
        ids = decide_many(engine, args.decisions, random.Random(7))
        with unit_of_work(engine.sessions) as session:
            key = create_key(session, settings.secret_key, "marketer", None)
        # The bench asks faster than a marketer's key may: the limiter still runs, with room.
        os.environ["TENIN_RATE_LIMIT_KEY_MARKETER"] = "100000/100000"
        client = create_app(engine=engine).test_client()
        headers = {"Authorization": f"Bearer {key}"}

        # A second app on the same engine: another process, its own memory, the same Redis.
        other = create_app(engine=engine).test_client()

        def timed(decision_id: str, app: Any = client) -> float:
            start = time.perf_counter()
            response = app.get(f"/v1/decisions/{decision_id}/explanation", headers=headers)
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 200, response.get_json()
            return elapsed

        timed(ids[0])  # load the model's trees once, as a running app has
        cold = [timed(d) for d in ids[1:]]
        warm = [timed(d) for d in ids[1:]]
        shared = [timed(d, other) for d in ids[1:]]
        anchor = []
        for d in ids[1:]:
            start = time.perf_counter()
            with engine.sessions() as session:
                assert session.get(Decision, d) is not None
            anchor.append((time.perf_counter() - start) * 1000)
        print(f"explanations of {len(cold)} decisions (shipped model, real PostgreSQL and Redis)")
        for name, values in (
            ("first ask (computed)", cold),
            ("asked again (cached)", warm),
            ("another process (Redis)", shared),
            ("anchor: decision row read", anchor),
        ):
            print(
                f"  {name:28s} p50 {percentile(values, 50):7.2f} ms"
                f"   p99 {percentile(values, 99):7.2f} ms"
            )


if __name__ == "__main__":
    main()
