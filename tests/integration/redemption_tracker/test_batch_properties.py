"""Property tests of the POS batch on real PostgreSQL (issue 11, "fuzzing in the suite").

Any mix of valid, invalid, repeated and replayed transactions gets exactly one result
per transaction, in order, and the ledger's sums equal the discounts the tills were
told were redeemed, with no code redeemed twice.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.redemption_tracker.bootstrap import Tracker
from shared.auth import create_key
from shared.db import unit_of_work
from tests.integration.redemption_tracker.support import ledger, post
from tests.support.redemption_tracker.builders import CampaignSpec, now, tx, uid

KINDS = ("valid", "no_coupon", "invalid", "repeat", "ahead", "late", "junk")


@pytest.fixture(scope="module")
def admin(pg_tracker: Tracker) -> str:
    with unit_of_work(pg_tracker.sessions) as s:
        return f"Bearer {create_key(s, pg_tracker.secret, 'admin')}"


def _invalid(i: int) -> dict[str, Any]:
    broken: list[dict[str, Any]] = [
        {**tx(), "total": -1},
        {**tx(), "occurred_at": "0001-01-01T00:00:00+01:00"},
        {**tx(), "coupon_codes": ["TN-\x00"]},
        {"transaction_id": uid("tx-")},
    ]
    return broken[i % len(broken)]


def _build(kinds: list[str], picks: list[int], codes: list[str]) -> list[dict[str, Any]]:
    """A batch from the drawn kinds; `picks` chooses codes (so some repeat) and variants."""
    batch: list[dict[str, Any]] = []
    for kind, pick in zip(kinds, picks, strict=True):
        code = codes[pick % len(codes)]
        if kind == "valid":
            batch.append(tx(total=500 + pick, coupons=[code]))
        elif kind == "no_coupon":
            batch.append(tx(total=300))
        elif kind == "invalid":
            batch.append(_invalid(pick))
        elif kind == "repeat" and batch:
            batch.append(dict(batch[pick % len(batch)]))
        elif kind == "ahead":
            batch.append(tx(coupons=[code], occurred_at=now() + timedelta(hours=1)))
        elif kind == "late":
            batch.append(tx(coupons=[code], occurred_at=now() - timedelta(days=4)))
        else:
            batch.append(tx(coupons=[f"JUNK-{pick}"]))
    return batch


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=25),
    picks=st.lists(st.integers(0, 50), min_size=25, max_size=25),
    replay=st.integers(0, 25),
)
def test_one_result_per_transaction_and_the_ledger_adds_up(
    client: FlaskClient,
    tracker: Tracker,
    admin: str,
    kinds: list[str],
    picks: list[int],
    replay: int,
) -> None:
    store = uid("S")
    c = CampaignSpec(tracker, starts_at=now() - timedelta(days=10))
    codes = [c.code() for _ in range(4)]
    first = _build(kinds, picks[: len(kinds)], codes)
    second = first[:replay] + _build(list(reversed(kinds)), picks[: len(kinds)], codes)

    told: list[dict[str, Any]] = []
    for batch in (first, second):
        results = post(client, admin, store, *batch)
        assert len(results) == len(batch)
        for sent, got in zip(batch, results, strict=True):
            assert got["transaction_id"] == sent.get("transaction_id")
            assert got["status"] in ("accepted", "duplicate", "rejected")
            if got["status"] == "rejected":
                assert got["errors"] and got["coupons"] == []
            else:
                assert len(got["coupons"]) == len(sent["coupon_codes"])
        told += [r for r in results if r["status"] == "accepted"]

    redeemed = [cp for r in told for cp in r["coupons"] if cp["status"] == "redeemed"]
    entries = ledger(tracker, c.campaign_id)
    assert sum(e.discount for e in entries) == sum(cp["discount"] for cp in redeemed)
    assert len(entries) == len(redeemed)
    assert max(Counter(cp["code"] for cp in redeemed).values(), default=0) <= 1
    # A transaction told `accepted` once is never told `accepted` again.
    accepted_ids = [r["transaction_id"] for r in told]
    assert len(accepted_ids) == len(set(accepted_ids))
