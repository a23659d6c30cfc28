"""The batched bare anchor of bench/decision_latency.py: the same decision work with no
framework (no SQLAlchemy, no consumer loop, no pydantic), a chunk of requests per transaction
(the worker's poll size, worker.DECISION_LOOP).

Per chunk of requests: one SQL lookup (decided request ids, customers' consent), one
pipelined Redis read (every customer's feature hash, every budget, every cap counter),
one ONNX call on all candidate rows, a greedy choice per request, one Lua call reserving
every chosen offer (the engine's own script: the same guarantees, each reservation held
under its request id), signed codes, then the decision, coupon and outbox rows as
multi-row INSERTs and one COMMIT (the decision log's unique request id is the record of
what was applied, as in the engine).
The campaigns are read once, as the engine's revision cache does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
import psycopg
import redis

from services.campaign_engine.budget import lua
from services.campaign_engine.decisions.candidates import offer_features
from services.campaign_engine.decisions.policy import offer_values
from shared.coupons import CouponClaims, issue_code, round_up_to_hour
from shared.db import utcnow
from shared.model.features import DecisionContext, feature_matrix, features_from_aggregates
from shared.model.scoring import PropensityScorer

LOOKUP = """
SELECT 'd', request_id, false, false FROM campaign_engine.decisions
 WHERE request_id = ANY(%(requests)s)
UNION ALL
SELECT 'c', customer_id, opted_out, linked FROM campaign_engine.customers
 WHERE customer_id = ANY(%(customers)s)
"""
INSERT_DECISION = (
    "INSERT INTO campaign_engine.decisions (decision_id, request_id, customer_id, campaign_id,"
    " offer_id, arm, propensity, score, model_version, features, reason, candidates,"
    " coupon_code, expires_at, decided_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::json, %s, %s, %s)"
    " ON CONFLICT (request_id) DO NOTHING"
)
INSERT_COUPON = (
    "INSERT INTO campaign_engine.coupons (code, decision_id, campaign_id, offer_id,"
    " customer_id, serial, face_value, issued_at, expires_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
INSERT_OUTBOX = (
    "INSERT INTO campaign_engine.outbox (event_id, topic, key, body, created_at)"
    " VALUES (%s, %s, %s, %s, %s)"
)


def _bare_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


class BareDecider:
    """The anchor's state: one connection, one Redis client, the model, the campaigns."""

    def __init__(
        self, database_url: str, redis_url: str, model_dir: Any, campaigns: list[Any], key: bytes
    ) -> None:
        self.conn = psycopg.connect(_bare_url(database_url))
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.reserve = self.redis.register_script(lua.RESERVE_MANY)
        self.scorer = PropensityScorer(model_dir)
        self.campaigns = campaigns
        self.key = key
        self.offers = [
            (c, o, offer_features(o), float(o["discount"]["value"]))
            for c in campaigns
            for o in c.offers
        ]
        self.values = offer_values([f for _, _, f, _ in self.offers], 0.30)

    def decide(self, requests: Sequence[dict[str, Any]]) -> int:
        """Decide one chunk in one transaction; returns how many were stored."""
        now = utcnow()
        day = now.strftime("%Y%m%d")
        ids = [r["request_id"] for r in requests]
        customers = list(dict.fromkeys(r["customer_id"] for r in requests))
        with self.conn.cursor() as cur:
            cur.execute(LOOKUP, {"requests": ids, "customers": customers})
            rows = cur.fetchall()
        decided = {r[1] for r in rows if r[0] == "d"}
        opted_out = {r[1] for r in rows if r[0] == "c" and r[2]}
        todo = [r for r in requests if r["request_id"] not in decided]
        pipe = self.redis.pipeline(transaction=False)
        for c in customers:
            pipe.hgetall(f"ce:cf:{c}")
        for campaign in self.campaigns:
            pipe.hmget(f"ce:{{{campaign.campaign_id}}}:budget", "issued", "money")
        pipe.mget(
            [f"ce:{{{c.campaign_id}}}:day:{day}:{x}" for c in self.campaigns for x in customers]
        )
        replies = pipe.execute()
        aggregates = dict(zip(customers, replies[: len(customers)], strict=True))
        ts = now.timestamp()
        offers = [f for _, _, f, _ in self.offers]
        matrices = []
        for r in todo:
            ctx = r["context"]
            context = DecisionContext(
                ctx["local_hour"], ctx["weekday"], ctx["intent"], ctx["sentiment"], ctx["language"]
            )
            known = features_from_aggregates(aggregates[r["customer_id"]], ts)
            matrices.append(feature_matrix(known, context, offers))
        scores = self.scorer.score(np.vstack(matrices)) if matrices else np.empty(0)
        n = len(offers)
        chosen: list[int | None] = []
        for i, r in enumerate(todo):
            ev = scores[i * n : (i + 1) * n] * self.values
            top = int(np.argmax(ev))
            chosen.append(top if ev[top] > 0 and r["customer_id"] not in opted_out else None)
        keys: list[str] = []
        args: list[Any] = [2 * 86400, uuid.uuid4().hex, 86400]
        for r, pick in zip(todo, chosen, strict=True):
            if pick is None:
                continue
            campaign, _, _, face = self.offers[pick]
            cid, c = campaign.campaign_id, r["customer_id"]
            budget, held = f"ce:{{{cid}}}:budget", f"ce:{{{cid}}}:held:{r['request_id']}"
            day_key, total_key = f"ce:{{{cid}}}:day:{day}:{c}", f"ce:{{{cid}}}:total:{c}"
            keys += [budget, day_key, total_key, budget, held, held + ":was"]
            args += [int(face), -1, -1, -1, 3, -1, 30 * 86400, 0, 1]
        taken = iter(self.reserve(keys=keys, args=args) if keys else [])
        return self._store(todo, chosen, scores, matrices, taken, now)

    def _store(
        self,
        todo: list[dict[str, Any]],
        chosen: list[int | None],
        scores: np.ndarray,
        matrices: list[np.ndarray],
        taken: Any,
        now: datetime,
    ) -> int:
        n = len(self.offers)
        decisions, coupons, outbox = [], [], []
        for i, (r, best) in enumerate(zip(todo, chosen, strict=True)):
            decision_id, code, expires, campaign, offer = str(uuid.uuid4()), None, None, None, None
            got = next(taken) if best is not None else None
            if got is not None and int(got[0]) == 1:
                campaign, offer, _, face = self.offers[best or 0]
                expires = round_up_to_hour(now + timedelta(hours=int(offer["valid_hours"])))
                claims = CouponClaims(campaign.number, offer["index"], int(got[2]), expires)
                code = issue_code(self.key, claims)
                coupons.append(
                    (
                        code,
                        decision_id,
                        campaign.campaign_id,
                        offer["offer_id"],
                        r["customer_id"],
                        int(got[2]),
                        int(face),
                        now,
                        expires,
                    )
                )
            row_scores = scores[i * n : (i + 1) * n]
            logged = {"candidates": matrices[i], "chosen": best}
            features = orjson.dumps(logged, option=orjson.OPT_SERIALIZE_NUMPY).decode()
            candidates = orjson.dumps(
                [
                    {"offer_id": o["offer_id"], "score": float(s)}
                    for (_, o, _, _), s in zip(self.offers, row_scores, strict=True)
                ]
            ).decode()
            cid = campaign.campaign_id if campaign else None
            oid = offer["offer_id"] if offer else None
            arm = "treatment" if code else "none"
            decisions.append(
                (decision_id, r["request_id"], r["customer_id"], cid, oid, arm, 0.95,
                 float(row_scores[best or 0]), self.scorer.model_version, features,
                 None if code else "policy_chose_none", candidates, code, expires, now)
            )  # fmt: skip
            body = orjson.dumps(
                {"type": "offer.decided", "request_id": r["request_id"], "coupon": code}
            ).decode()
            outbox.append((uuid.uuid4(), "offer.decisions", r["customer_id"], body, now))
        with self.conn.cursor() as cur:
            cur.executemany(INSERT_DECISION, decisions)
            if coupons:
                cur.executemany(INSERT_COUPON, coupons)
            cur.executemany(INSERT_OUTBOX, outbox)
        self.conn.commit()
        return len(decisions)

    def run(self, requests: list[dict[str, Any]], chunk: int = 100) -> tuple[list[float], float]:
        """Decide every request, `chunk` per transaction; latencies (s) and wall time."""
        latencies: list[float] = []
        started = time.perf_counter()
        for at in range(0, len(requests), chunk):
            begun = time.perf_counter()
            part = requests[at : at + chunk]
            self.decide(part)
            latencies += [time.perf_counter() - begun] * len(part)
        return latencies, time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()
        self.redis.close()
