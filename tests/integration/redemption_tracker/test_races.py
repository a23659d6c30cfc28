"""Races on real PostgreSQL: the database, not luck, decides who wins."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import func, select

from services.redemption_tracker.app import create_app
from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.models import CampaignUsage, LedgerEntry, Transaction
from tests.integration.redemption_tracker.support import live_redemptions, outbox_events, post
from tests.support.redemption_tracker.builders import CampaignSpec, tx, uid

T = TypeVar("T")


def all_at_once(n: int, work: Callable[[int], T]) -> list[T]:
    """Run `work(i)` in n threads released together by a barrier."""
    barrier = threading.Barrier(n, timeout=30)

    def run(i: int) -> T:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_fifty_tills_one_code_exactly_one_redeemed(
    tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    code = c.code()
    app = create_app(tracker=tracker)

    def till(i: int) -> dict[str, Any]:
        [result] = post(
            app.test_client(), auth["pos"], store, tx(f"race-{uid()}-{i}", coupons=[code])
        )
        return result["coupons"][0]

    outcomes = all_at_once(50, till)
    assert Counter(o["status"] for o in outcomes) == {"redeemed": 1, "rejected": 49}
    assert {o["reason"] for o in outcomes if o["status"] == "rejected"} == {"already_redeemed"}
    assert live_redemptions(tracker, code) == 1
    assert len(outbox_events(tracker, "coupon.redeemed", code=code)) == 1
    with tracker.sessions() as s:
        entries = s.execute(
            select(func.count()).where(LedgerEntry.campaign_id == c.campaign_id)
        ).scalar_one()
        usage = s.get(CampaignUsage, c.campaign_id)
    assert entries == 1 and usage is not None and usage.redemptions == 1


def test_the_same_transaction_from_many_threads_is_recorded_once(
    tracker: Tracker, auth: dict, store: str
) -> None:
    code = CampaignSpec(tracker).code()
    t = tx(coupons=[code])
    app = create_app(tracker=tracker)
    results = all_at_once(20, lambda i: post(app.test_client(), auth["pos"], store, t)[0])
    assert Counter(r["status"] for r in results) == {"accepted": 1, "duplicate": 19}
    assert all(r["coupons"] == results[0]["coupons"] for r in results)
    with tracker.sessions() as s:
        assert (
            s.execute(
                select(func.count()).where(Transaction.transaction_id == t["transaction_id"])
            ).scalar_one()
            == 1
        )
    assert live_redemptions(tracker, code) == 1


def test_the_redemption_budget_holds_under_a_race(tracker: Tracker, auth: dict, store: str) -> None:
    c = CampaignSpec(tracker, budget={"max_redemptions": 5})
    codes = [c.code() for _ in range(30)]
    app = create_app(tracker=tracker)
    outcomes = all_at_once(
        30,
        lambda i: post(app.test_client(), auth["pos"], store, tx(coupons=[codes[i]]))[0]["coupons"][
            0
        ],
    )
    assert Counter(o["status"] for o in outcomes) == {"redeemed": 5, "rejected": 25}
    assert {o["reason"] for o in outcomes if o["status"] == "rejected"} == {
        "redemption_budget_exhausted"
    }
    with tracker.sessions() as s:
        usage = s.get(CampaignUsage, c.campaign_id)
    assert usage is not None and usage.redemptions == 5


def test_overlapping_batches_in_any_order_neither_deadlock_nor_double_count(
    tracker: Tracker, auth: dict, store: str
) -> None:
    c = CampaignSpec(tracker)
    txs = [tx(coupons=[c.code()] if i % 3 == 0 else []) for i in range(60)]
    app = create_app(tracker=tracker)

    def batch(i: int) -> list[dict[str, Any]]:
        mine = random.Random(i).sample(txs, 40)  # each batch a different order
        return post(app.test_client(), auth["pos"], store, *mine)

    results = [r for rs in all_at_once(8, batch) for r in rs]
    accepted = Counter(r["transaction_id"] for r in results if r["status"] == "accepted")
    seen = {r["transaction_id"] for r in results}
    assert set(accepted) == seen and set(accepted.values()) == {1}
    assert all(r["status"] in ("accepted", "duplicate") for r in results)
    with tracker.sessions() as s:
        usage = s.get(CampaignUsage, c.campaign_id)
    redeemed_codes = {
        t["coupon_codes"][0] for t in txs if t["coupon_codes"] and t["transaction_id"] in seen
    }
    assert usage is not None and usage.redemptions == len(redeemed_codes)


def test_the_database_refuses_a_second_live_redemption_of_a_code(
    client: Any, tracker: Tracker, auth: dict, store: str
) -> None:
    import pytest
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from services.redemption_tracker.models import Redemption
    from shared.db import unit_of_work
    from tests.support.redemption_tracker.builders import now

    code = CampaignSpec(tracker).code()
    [result] = post(client, auth["pos"], store, tx(coupons=[code]))
    with tracker.sessions() as s:
        first = s.execute(select(Redemption).where(Redemption.code == code)).scalar_one()
    copy = {c.name: getattr(first, c.name) for c in Redemption.__table__.columns if c.name != "id"}
    with pytest.raises(IntegrityError), unit_of_work(tracker.sessions) as s:
        s.execute(insert(Redemption).values(**{**copy, "redeemed_at": now()}))
