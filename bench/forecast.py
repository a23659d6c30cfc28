"""Forecast wall time: POST /v1/campaigns/{id}/forecast for a 100,000-customer audience.

A scratch database gets N following customers, each with a logged decision carrying the
features as they were (four candidate rows, the decision log's format), and a draft campaign
with four offers. The forecast is asked through the served app (key check included), a few
times. The anchor, measured in the same run: the bare audience count query plus one ONNX
call on the same customer x offer rows.

Run (after `eval "$(scripts/services up)"`):
    python bench/forecast.py [--customers 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, insert, select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.explanation_latency import offers_body, scratch_engine  # noqa: E402
from services.campaign_engine.app import create_app  # noqa: E402
from services.campaign_engine.campaigns.commands import create_campaign  # noqa: E402
from services.campaign_engine.campaigns.schemas import CampaignIn  # noqa: E402
from services.campaign_engine.decisions.candidates import offer_features  # noqa: E402
from services.campaign_engine.models import Customer, Decision  # noqa: E402
from shared.auth import create_key  # noqa: E402
from shared.db import unit_of_work, utcnow  # noqa: E402
from shared.model.features import (  # noqa: E402
    CustomerFeatures,
    DecisionContext,
    feature_matrix,
)

BATCH = 5_000
REASONS = {"treatment": "exploit", "holdout": "holdout", "none": "policy_chose_none"}


def campaign_body() -> dict[str, object]:
    now = utcnow()
    return {
        "name": "bench forecast",
        "starts_at": (now + timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=29)).isoformat(),
        "offers": offers_body(),
        "budget": {"max_coupons": 50_000, "max_discount_total": 3_000_000},
        "caps": {"per_customer_per_day": 1, "per_customer_total": 3},
        "holdout_pct": 10,
        "revenue_share": {"pct": 5, "basis": "incremental"},
    }


def seed_customers(engine: object, n: int, offers: list[dict[str, object]]) -> np.ndarray:
    """N customers, each with one logged decision holding its four candidate rows (returned)."""
    rng = np.random.default_rng(7)
    feats = [offer_features(o) for o in offers]
    now = utcnow()
    scored: list[np.ndarray] = []
    sessions = engine.sessions  # type: ignore[attr-defined]
    for start in range(0, n, BATCH):
        customers, decisions = [], []
        arms = rng.choice(["treatment", "holdout", "none"], size=BATCH, p=[0.5, 0.1, 0.4])
        for i in range(min(BATCH, n - start)):
            cid = f"c_{uuid.uuid4().hex[:16]}"
            known = CustomerFeatures(
                recency_days=float(rng.uniform(0, 60)),
                frequency_per_week=float(rng.gamma(2.0, 1.0)),
                monetary_avg=float(rng.uniform(300, 1500)),
                days_since_follow=float(rng.uniform(1, 365)),
                coupons_issued=int(rng.integers(0, 6)),
                category_share={"onigiri": float(rng.uniform()), "coffee": float(rng.uniform())},
            )
            context = DecisionContext(int(rng.integers(6, 23)), int(rng.integers(0, 7)), "hungry")
            matrix = feature_matrix(known, context, feats)
            scored.append(matrix)
            customers.append({"customer_id": cid, "language": "ja"})
            decisions.append(
                {
                    "decision_id": str(uuid.uuid4()),
                    "request_id": str(uuid.uuid4()),
                    "customer_id": cid,
                    "arm": str(arms[i]),
                    "propensity": 1.0,
                    "model_version": "bench",
                    "features": json.dumps(
                        {"candidates": np.round(matrix, 6).tolist(), "chosen": None},
                        separators=(",", ":"),
                    ),
                    "reason": REASONS[str(arms[i])],
                    "decided_at": now - timedelta(days=float(rng.uniform(0, 27))),
                }
            )
        with unit_of_work(sessions) as session:
            session.execute(insert(Customer), customers)
            session.execute(insert(Decision), decisions)
        print(f"  seeded {start + len(customers):,} customers", flush=True)
    return np.vstack(scored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with scratch_engine("tenin_bench_fc") as engine:
        settings, scorer = engine.settings, engine.scorer
        with unit_of_work(engine.sessions) as session:
            draft = create_campaign(session, CampaignIn.model_validate(campaign_body()))
            campaign_id, offers = draft.campaign_id, list(draft.offers)
            key = create_key(session, settings.secret_key, "marketer", None)
        rows = seed_customers(engine, args.customers, offers)
        client = create_app(engine=engine).test_client()
        headers = {"Authorization": f"Bearer {key}"}
        walls, body = [], {}
        for _ in range(args.runs + 1):  # the first also joins a month of logged outcomes
            start = time.perf_counter()
            response = client.post(f"/v1/campaigns/{campaign_id}/forecast", headers=headers)
            walls.append(time.perf_counter() - start)
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
        anchors = []
        for _ in range(args.runs):
            start = time.perf_counter()
            with engine.sessions() as session:
                session.scalar(
                    select(func.count())
                    .select_from(Customer)
                    .where(Customer.following.is_(True), Customer.opted_out.is_(False))
                )
            scorer.score(rows)
            anchors.append(time.perf_counter() - start)
        print(
            f"forecast for {body['eligible_audience']:,} eligible customers x {len(offers)} offers"
        )
        print(f"  first forecast (logged effect joined)  {walls[0]:6.2f} s")
        print(
            f"  later forecasts (effect cached)   median {statistics.median(walls[1:]):6.2f} s"
            f"   max {max(walls[1:]):6.2f} s   ({args.runs} runs)"
        )
        print(f"  anchor: count + one ONNX call   median {statistics.median(anchors):6.2f} s")
        print(
            f"  coupons {body['coupons']}  confidence {body['confidence']}"
            f"  basis {body['basis']['kind']} ({body['basis']['decision_rows']:,} rows)"
        )


if __name__ == "__main__":
    main()
