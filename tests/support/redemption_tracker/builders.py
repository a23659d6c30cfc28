"""Builders for redemption-tracker tests: campaigns, decisions, links, codes, transactions."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.handlers import handle_event
from shared.auth import create_key
from shared.coupons import CouponClaims, coupon_key, issue_code, round_up_to_hour
from shared.crypto import member_hash
from shared.db import unit_of_work
from shared.events import Envelope, make_event

_numbers = itertools.count(random.randrange(1, 2**19))
_serials = itertools.count(random.randrange(1, 2**23))


def now() -> datetime:
    return datetime.now(UTC)


def uid(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def offer(index: int = 0, **over: Any) -> dict[str, Any]:
    base = {
        "offer_id": f"off-{index}-{uid()}",
        "index": index,
        "title": f"offer {index}",
        "discount": {"type": "amount", "value": 100},
        "applies_to": {},
        "min_basket": 0,
        "valid_hours": 72,
        "category": "onigiri",
    }
    base.update(over)
    return base


class CampaignSpec:
    """A campaign the tracker learns of by event; `number` is what its codes carry."""

    def __init__(self, tracker: Tracker, **over: Any) -> None:
        self.tracker = tracker
        self.campaign_id = over.pop("campaign_id", uid("cmp-"))
        self.number = over.pop("number", next(_numbers))
        t = now()
        self.snapshot: dict[str, Any] = {
            "campaign_id": self.campaign_id,
            "number": self.number,
            "name": "test campaign",
            "status": "active",
            "starts_at": t - timedelta(days=1),
            "ends_at": t + timedelta(days=30),
            "offers": [offer(0)],
            "budget": {"max_coupons": None, "max_redemptions": None, "max_discount_total": None},
            "caps": {},
            "holdout_pct": 10.0,
            "revenue_share": {"pct": 5, "basis": "attributed"},
            "per_call_fee": 1,
        }
        self.snapshot.update(over)
        self.publish()

    def publish(
        self,
        event_type: str = "campaign.activated",
        occurred_at: datetime | None = None,
        **over: Any,
    ) -> Envelope:
        self.snapshot.update(over)
        env = make_event(
            event_type,
            {"campaign_id": self.campaign_id, "campaign": self.snapshot},
            key=self.campaign_id,
            producer="campaign_engine",
            occurred_at=occurred_at,
        )
        handle_event(self.tracker, "test.campaigns", env)
        return env

    def code(self, offer_index: int = 0, expires_at: datetime | None = None) -> str:
        expires = round_up_to_hour(expires_at or now() + timedelta(days=3))
        return issue_code(
            self.tracker.coupon_key, CouponClaims(self.number, offer_index, next(_serials), expires)
        )


def forged_code(campaign_number: int) -> str:
    """A well-formed code for the campaign, signed with a key that is not the tracker's."""
    return issue_code(
        coupon_key("someone-else's-key"),
        CouponClaims(campaign_number, 0, 1, round_up_to_hour(now() + timedelta(days=1))),
    )


def decision_event(
    customer_id: str,
    campaign_id: str | None,
    arm: str,
    code: str | None = None,
    *,
    valid_from: datetime | None = None,
    expires_at: datetime | None = None,
    min_basket: int = 0,
    discount: dict[str, Any] | None = None,
    offer_id: str | None = "off",
    occurred_at: datetime | None = None,
) -> Envelope:
    coupon = None
    if code is not None:
        coupon = {
            "code": code,
            "title": "t",
            "discount": discount or {"type": "amount", "value": 100},
            "valid_from": valid_from or now() - timedelta(hours=1),
            "expires_at": expires_at or now() + timedelta(days=3),
            "min_basket": min_basket,
        }
    return make_event(
        "offer.decided",
        {
            "request_id": uid("req-"),
            "customer_id": customer_id,
            "campaign_id": campaign_id,
            "offer_id": offer_id if campaign_id else None,
            "arm": arm,
            "coupon": coupon,
            "propensity": 0.5,
            "score": 0.1,
            "model_version": "test",
        },
        key=customer_id,
        producer="campaign_engine",
        occurred_at=occurred_at,
    )


def linked_event(tracker: Tracker, customer_id: str, member_id: str) -> Envelope:
    return make_event(
        "customer.linked",
        {
            "customer_id": customer_id,
            "member_hash": member_hash(tracker.pseudonym_secret, member_id),
        },
        key=customer_id,
        producer="chat_agent",
    )


def delivered_event(code: str, customer_id: str, campaign_id: str) -> Envelope:
    return make_event(
        "coupon.delivered",
        {
            "code": code,
            "customer_id": customer_id,
            "campaign_id": campaign_id,
            "request_id": uid("req-"),
            "channel": "push",
        },
        key=customer_id,
        producer="chat_agent",
    )


def apply(tracker: Tracker, *events: Envelope) -> None:
    for env in events:
        handle_event(tracker, "test.copies", env)


def tx(
    transaction_id: str | None = None,
    *,
    total: int = 1000,
    coupons: list[str] | None = None,
    member_id: str | None = None,
    occurred_at: datetime | None = None,
    items: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transaction_id": transaction_id or uid("tx-"),
        "occurred_at": (occurred_at or now()).isoformat(),
        "currency": "JPY",
        "total": total,
        "items": items
        if items is not None
        else [
            {
                "sku": "4901234567890",
                "category": "onigiri",
                "qty": 2,
                "unit_price": total // 2 if total else 0,
            }
        ],
        "coupon_codes": coupons or [],
    }
    if member_id is not None:
        body["member_id"] = member_id
    return body


def keys(tracker: Tracker, store_id: str) -> dict[str, str]:
    """Authorization headers for a POS key of the store, a marketer key and an admin key."""
    with unit_of_work(tracker.sessions) as s:
        pos = create_key(s, tracker.secret, "pos", store_id)
        other = create_key(s, tracker.secret, "pos", store_id + "-other")
        marketer = create_key(s, tracker.secret, "marketer")
        admin = create_key(s, tracker.secret, "admin")
    return {
        "pos": f"Bearer {pos}",
        "other": f"Bearer {other}",
        "marketer": f"Bearer {marketer}",
        "admin": f"Bearer {admin}",
    }
