"""The events the POS feed publishes, as outbox rows written in the batch's own commit.

`coupon.redeemed` for every coupon redeemed on a new transaction; one
`coupon.redemption_rejected` per batch and (reason, campaign, customer) with a `count`,
so a batch of 1,000 junk codes is one event, not 1,000; `sale.recorded` for a sale by a
linked customer; `coupon.voided` for each redemption a void reverses
(docs/interfaces.md § Events).

A batch's events are built as drafts (type, key, payload) and encoded together by
`outbox_rows`: the payloads of one type are validated against their registered schema in
one call, and each envelope is serialised directly, the very bytes
`shared.events.encode(make_event(...))` gives (a unit test holds them equal), without
building an `Envelope` model per event (docs/architecture.md § Hot paths).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple

from pydantic import TypeAdapter
from pydantic_core import to_json

from services.redemption_tracker.models import Redemption
from services.redemption_tracker.pos.batch import BatchTx, Outcome
from shared.db import utcnow
from shared.events import SCHEMAS, TOPIC_OF_TYPE, EventSchemaError, Strict

VERSION = 1


class Draft(NamedTuple):
    """An event to be written: its type, key and payload (checked in `outbox_rows`)."""

    type: str
    key: str
    payload: dict[str, Any]


@cache
def _payloads(event_type: str) -> TypeAdapter[list[Strict]]:
    schema = SCHEMAS[(event_type, VERSION)]
    return TypeAdapter(list[schema])  # type: ignore[valid-type]  # the schema is looked up at run time


def outbox_rows(drafts: list[Draft], producer: str) -> list[dict[str, Any]]:
    """Validated events as outbox rows, in draft order (shared.outbox.add_event's rows).

    Raises EventSchemaError, as `make_event` does, when a payload breaks its schema.
    """
    checked: list[Any] = [None] * len(drafts)
    by_type: dict[str, list[int]] = {}
    for i, d in enumerate(drafts):
        by_type.setdefault(d.type, []).append(i)
    for event_type, at in by_type.items():
        adapter = _payloads(event_type)
        try:
            models = adapter.validate_python([drafts[i].payload for i in at])
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise EventSchemaError(f"invalid {event_type} payload: {exc}") from exc
        for i, dumped in zip(at, adapter.dump_python(models, mode="json"), strict=True):
            checked[i] = dumped
    occurred_at, created_at = datetime.now(UTC), utcnow()
    rows = []
    for d, payload in zip(drafts, checked, strict=True):
        event_id = uuid.uuid4()
        envelope = {
            "event_id": event_id,
            "type": d.type,
            "version": VERSION,
            "occurred_at": occurred_at,
            "producer": producer,
            "key": d.key,
            "payload": payload,
        }
        rows.append(
            {
                "event_id": event_id,
                "topic": TOPIC_OF_TYPE[d.type],
                "key": d.key,
                "body": to_json(envelope).decode(),
                "created_at": created_at,
                "sent_at": None,
            }
        )
    return rows


def coupon_redeemed(t: BatchTx, o: Outcome, store_id: str) -> Draft:
    """`coupon.redeemed` for a redeemed coupon."""
    assert o.campaign is not None
    return Draft(
        "coupon.redeemed",
        o.customer_id or o.code or t.tx.transaction_id,
        {
            "code": o.code,
            "customer_id": o.customer_id,
            "campaign_id": o.campaign.campaign_id,
            "offer_id": o.offer_id,
            "transaction_id": t.tx.transaction_id,
            "store_id": store_id,
            "discount": o.discount,
            "basket_total": t.tx.total,
        },
    )


RejectionKey = tuple[str | None, str | None, str | None]  # reason, campaign_id, customer_id


def rejection_key(o: Outcome) -> RejectionKey:
    """What a batch's rejections are grouped by."""
    return (o.reason, o.campaign_id, o.customer_id)


def coupon_rejections(
    groups: Iterable[list[tuple[BatchTx, Outcome]]], store_id: str
) -> list[Draft]:
    """One `coupon.redemption_rejected` per group: its first coupon and the group's size."""
    drafts = []
    for group in groups:
        t, o = group[0]
        drafts.append(
            Draft(
                "coupon.redemption_rejected",
                o.customer_id or o.code or o.raw or t.tx.transaction_id,
                {
                    "code": o.code or o.raw,
                    "reason": o.reason,
                    "customer_id": o.customer_id,
                    "campaign_id": o.campaign_id,
                    "transaction_id": t.tx.transaction_id,
                    "store_id": store_id,
                    "count": len(group),
                },
            )
        )
    return drafts


def sale_recorded(t: BatchTx, customer_id: str, store_id: str) -> Draft:
    """`sale.recorded`: a linked customer's sale, for the engine's customer features."""
    return Draft(
        "sale.recorded",
        customer_id,
        {
            "customer_id": customer_id,
            "transaction_id": t.tx.transaction_id,
            "store_id": store_id,
            "total": t.tx.total,
            "occurred_at": t.tx.occurred_at,
            "categories": sorted({i.category for i in t.tx.items if i.category}),
        },
    )


def coupon_voided(r: Redemption) -> Draft:
    """`coupon.voided`: a redemption reversed by a void (the code is free again)."""
    return Draft(
        "coupon.voided",
        r.customer_id or r.code,
        {
            "code": r.code,
            "customer_id": r.customer_id,
            "campaign_id": r.campaign_id,
            "offer_id": r.offer_id,
            "transaction_id": r.transaction_id,
            "store_id": r.store_id,
            "discount": r.discount,
        },
    )
