"""Helpers shared by the redemption-tracker integration tests."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import LedgerEntry, Outbox, Redemption


def post(client: FlaskClient, auth: str, store: str, *txs: object) -> list[dict]:
    r = client.post(
        "/v1/pos/transactions",
        json={"store_id": store, "transactions": list(txs)},
        headers={"Authorization": auth},
    )
    assert r.status_code == 200, r.get_json()
    return r.get_json()["results"]


def one_coupon(client: FlaskClient, auth: str, store: str, t: dict[str, Any]) -> dict:
    [result] = post(client, auth, store, t)
    assert result["status"] == "accepted", result
    [coupon] = result["coupons"]
    return coupon


def void(client: FlaskClient, auth: str, store: str, t: dict[str, Any], **over: Any) -> Any:
    """POST a void of transaction `t` (dated at the sale); `over` replaces body fields."""
    return client.post(
        "/v1/pos/voids",
        json={
            "store_id": store,
            "transaction_id": t["transaction_id"],
            "occurred_at": t["occurred_at"],
            "reason": "customer returned the goods",
            **over,
        },
        headers={"Authorization": auth},
    )


def live_redemptions(tracker: Tracker, code: str) -> int:
    with tracker.sessions() as s:
        return s.execute(
            select(func.count()).where(Redemption.code == code, Redemption.voided_at.is_(None))
        ).scalar_one()


def ledger(tracker: Tracker, campaign_id: str) -> list[LedgerEntry]:
    with tracker.sessions() as s:
        return list(
            s.execute(
                select(LedgerEntry)
                .where(LedgerEntry.campaign_id == campaign_id)
                .order_by(LedgerEntry.id)
            ).scalars()
        )


def outbox_events(tracker: Tracker, event_type: str, **match: Any) -> list[dict]:
    """Outbox events of a type whose payload has the given values."""
    with tracker.sessions() as s:
        bodies = (
            s.execute(select(Outbox.body).where(Outbox.body.contains(f'"type":"{event_type}"')))
            .scalars()
            .all()
        )
    out = []
    for body in bodies:
        env = json.loads(body)
        if all(env["payload"].get(k) == v for k, v in match.items()):
            out.append(env)
    return out
