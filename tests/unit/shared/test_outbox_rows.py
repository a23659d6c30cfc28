"""A batch's outbox rows (shared.outbox.outbox_rows) carry exactly the bytes
`encode(make_event(...))` gives, for every type the hot paths write."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared.events import (
    TOPIC_OF_TYPE,
    Discount,
    EventSchemaError,
    IssuedCoupon,
    decode,
    encode,
    make_event,
)
from shared.outbox import Draft, outbox_rows

JST = timezone(timedelta(hours=9))
DRAFTS = [
    Draft(
        "coupon.redeemed",
        "c_1",
        {
            "code": "TN-8K5P5-0MRD0-Y5ZP1-8TCJH-59D",
            "customer_id": "c_1",
            "campaign_id": "camp",
            "offer_id": "o1",
            "transaction_id": "S1-1",
            "store_id": "S1",
            "discount": 100,
            "basket_total": 1280,
        },
    ),
    Draft(
        "sale.recorded",
        "c_2",
        {
            "customer_id": "c_2",
            "transaction_id": "S1-2",
            "store_id": "S1",
            "total": 0,
            "occurred_at": datetime(2026, 11, 29, 10, 15, 0, 123456, tzinfo=JST),
            "categories": ["drinks", "おにぎり"],
        },
    ),
    Draft(
        "coupon.redemption_rejected",
        "TN-JUNK",
        {
            "code": "TN-JUNK",
            "reason": "unknown_code",
            "customer_id": None,
            "campaign_id": None,
            "transaction_id": "S1-3",
            "store_id": "S1",
            "count": 3,
        },
    ),
    Draft(
        "coupon.voided",
        "c_1",
        {
            "code": "TN-8K5P5-0MRD0-Y5ZP1-8TCJH-59D",
            "customer_id": None,
            "campaign_id": "camp",
            "offer_id": "o1",
            "transaction_id": "S1-1",
            "store_id": "S1",
            "discount": 0,
        },
    ),
    Draft(  # the decision path's event: a nested coupon model, a drop, an offset
        "offer.decided",
        "c_3",
        {
            "request_id": "r-1",
            "customer_id": "c_3",
            "campaign_id": "camp",
            "offer_id": "o2",
            "arm": "treatment",
            "coupon": IssuedCoupon(
                code="TN-8K5P5-0MRD0-Y5ZP1-8TCJH-59D",
                title="10% off bento",
                discount=Discount(type="percent", value=10),
                valid_from=datetime(2026, 11, 29, 1, 0, tzinfo=JST),
                expires_at=datetime(2026, 12, 2, 1, 0, tzinfo=JST),
                min_basket=500,
            ),
            "propensity": 0.9,
            "score": 0.123456,
            "model_version": "prop-1",
            "reason": None,
            "drop_id": "d-1",
            "utc_offset_minutes": 330,
        },
    ),
]


def test_rows_are_the_shared_encoders_bytes_in_draft_order() -> None:
    drafts = [DRAFTS[1], *DRAFTS, DRAFTS[0]]
    rows = outbox_rows(drafts, "a_producer")
    assert len({r["event_id"] for r in rows}) == len(drafts)
    for draft, row in zip(drafts, rows, strict=True):
        sent = decode(row["body"].encode())
        assert isinstance(row["event_id"], uuid.UUID) and sent.event_id == row["event_id"]
        expected = make_event(
            draft.type,
            draft.payload,
            key=draft.key,
            producer="a_producer",
            event_id=row["event_id"],
            occurred_at=sent.occurred_at,
        )
        assert row["body"].encode() == encode(expected)
        assert (row["topic"], row["key"], row["sent_at"]) == (
            TOPIC_OF_TYPE[draft.type],
            draft.key,
            None,
        )
    assert (
        json.loads(rows[0]["body"])["payload"]["occurred_at"] == "2026-11-29T10:15:00.123456+09:00"
    )


@pytest.mark.parametrize(
    "payload",
    [
        DRAFTS[0].payload | {"discount": -1},
        DRAFTS[0].payload | {"extra": 1},
        {k: v for k, v in DRAFTS[0].payload.items() if k != "offer_id"},
    ],
)
def test_a_payload_that_breaks_its_schema_is_refused(payload: dict[str, object]) -> None:
    with pytest.raises(EventSchemaError, match="coupon.redeemed"):
        outbox_rows([DRAFTS[1], Draft("coupon.redeemed", "k", payload)], "a_producer")


def test_rows_take_the_given_creation_time() -> None:
    at = datetime(2026, 11, 30, 12, 0, tzinfo=JST)
    assert {r["created_at"] for r in outbox_rows(DRAFTS, "a_producer", at)} == {at}


def test_no_drafts_no_rows() -> None:
    assert outbox_rows([], "a_producer") == []
