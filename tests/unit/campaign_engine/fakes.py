"""Fakes and builders for campaign_engine tests (no mocks of internals)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import redis

from services.campaign_engine.campaigns.commands import change_status, create_campaign
from services.campaign_engine.campaigns.schemas import CampaignIn
from services.campaign_engine.models import Campaign
from shared.db import unit_of_work
from shared.events import Envelope, make_event
from shared.model.features import CustomerFeatures

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


class FakeFeatures:
    """The customer feature store, in a dict; `down` plays Redis being unreachable."""

    def __init__(self) -> None:
        self.known: dict[str, CustomerFeatures] = {}
        self.calls: Counter[tuple[str, str]] = Counter()
        self.down = False

    def _touch(self, what: str, customer_id: str) -> None:
        if self.down:
            raise redis.ConnectionError("fake redis is down")
        self.calls[(what, customer_id)] += 1

    def get(self, customer_id: str, now: datetime | float) -> CustomerFeatures:
        self._touch("get", customer_id)
        return self.known.get(customer_id, CustomerFeatures())

    def get_many(self, customer_ids: list[str], now: datetime | float) -> list[CustomerFeatures]:
        return [self.get(c, now) for c in customer_ids]

    def counter_key(self, customer_id: str) -> str | None:
        return None  # no hash to fold the count into: record_coupon_issued counts it

    def record_coupon_issued(self, customer_id: str) -> None:
        self._touch("issued", customer_id)

    def record_sale(
        self, customer_id: str, total: float, occurred_at: datetime, categories: list[str]
    ) -> None:
        self._touch("sale", customer_id)

    def record_follow(self, customer_id: str, at: datetime) -> None:
        self._touch("follow", customer_id)

    def mark_linked(self, customer_id: str) -> None:
        self._touch("linked", customer_id)

    def mark_unlinked(self, customer_id: str) -> None:
        self._touch("unlinked", customer_id)

    def record_redemption(self, customer_id: str) -> None:
        self._touch("redeemed", customer_id)

    def record_void(self, customer_id: str) -> None:
        self._touch("voided", customer_id)


class FakeMarkers:
    def __init__(self) -> None:
        self.keys: set[str] = set()

    def seen(self, key: str) -> bool:
        return key in self.keys

    def mark(self, key: str) -> None:
        self.keys.add(key)


class ConstantScorer:
    """P(redeem) = p for every candidate; `broken` makes scoring raise."""

    model_version = "constant-test"

    def __init__(self, p: float = 0.5) -> None:
        self.p = p
        self.broken = False

    def score(self, matrix: np.ndarray) -> np.ndarray:
        if self.broken:
            raise RuntimeError("onnx session exploded")
        return np.full(len(matrix), self.p)

    def maybe_reload(self) -> bool:
        return False


def offer_spec(**over: object) -> dict[str, Any]:
    """An offer as the API takes it (before it is stored); keyword arguments replace fields."""
    base: dict[str, Any] = {
        "title": "50 yen off onigiri",
        "discount": {"type": "amount", "value": 50},
        "applies_to": {"categories": ["onigiri", "bento"]},
        "min_basket": 300,
        "valid_hours": 72,
    }
    base.update(over)
    return base


def campaign_body(now: datetime = NOW, **over: Any) -> dict[str, Any]:
    """A valid campaign body running around `now`; keyword arguments replace top-level fields."""
    body: dict[str, Any] = {
        "name": f"test {uuid.uuid4().hex[:6]}",
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "offers": [
            {
                "title": "50 yen off onigiri",
                "discount": {"type": "amount", "value": 50},
                "applies_to": {"categories": ["onigiri"]},
                "min_basket": 0,
                "valid_hours": 72,
            }
        ],
        "budget": {"max_coupons": 1000},
        "caps": {"per_customer_per_day": None, "per_customer_total": None},
        "holdout_pct": 0,
        "revenue_share": {"pct": 5, "basis": "attributed"},
        # Tests of budgets and caps run unpaced; pacing has its own tests (test_pacing*.py).
        "pacing": "asap",
    }
    body.update(over)
    return body


def active_campaign(sessions: Any, now: datetime = NOW, **over: Any) -> Campaign:
    """Create and activate a campaign straight through the campaign commands."""
    with unit_of_work(sessions) as session:
        campaign = create_campaign(session, CampaignIn.model_validate(campaign_body(now, **over)))
        change_status(session, campaign, "activate", now)
    return campaign


def offer_request(
    customer_id: str | None = None, request_id: str | None = None, **context: Any
) -> Envelope:
    """An offer.requested envelope."""
    customer_id = customer_id or f"c_{uuid.uuid4().hex[:16]}"
    ctx = {"intent": "hungry", "sentiment": 0.2, "language": "ja", "local_hour": 12, "weekday": 2}
    ctx.update(context)
    return make_event(
        "offer.requested",
        {"request_id": request_id or str(uuid.uuid4()), "customer_id": customer_id, "context": ctx},
        key=customer_id,
        producer="chat_agent",
    )
