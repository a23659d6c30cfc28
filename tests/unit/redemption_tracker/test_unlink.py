"""`customer.unlinked` (issue 11, finding 3): a card that moved stops counting for its old customer."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient

from services.redemption_tracker.bootstrap import Tracker
from services.redemption_tracker.handlers import handle_event
from shared.events import Envelope, make_event
from tests.integration.redemption_tracker.support import outbox_events, post
from tests.support.redemption_tracker.builders import apply, linked_event, now, tx, uid


def _unlinked(tracker: Tracker, customer_id: str, member_id: str) -> Envelope:
    link = linked_event(tracker, customer_id, member_id)
    later = now() + timedelta(seconds=1)
    return make_event(
        "customer.unlinked", link.payload, key=customer_id, producer="chat_agent", occurred_at=later
    )


def _sales_of(tracker: Tracker, store: str, transaction: dict) -> list[str]:
    events = outbox_events(tracker, "sale.recorded", store_id=store)
    return [
        e["payload"]["customer_id"]
        for e in events
        if e["payload"]["transaction_id"] == transaction["transaction_id"]
    ]


def test_an_unlinked_card_stops_counting_for_its_old_customer(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    member, customer = "M" + uid().upper(), uid("c_")
    apply(tracker, linked_event(tracker, customer, member))
    before = tx(member_id=member)
    post(client, auth["pos"], store, before)
    assert _sales_of(tracker, store, before) == [customer]
    assert handle_event(tracker, "test.copies", _unlinked(tracker, customer, member))
    after = tx(member_id=member)
    post(client, auth["pos"], store, after)
    assert _sales_of(tracker, store, after) == [], "no sale.recorded keyed to the old customer"


def test_an_unlink_arriving_after_the_new_link_leaves_the_new_link(
    client: FlaskClient, tracker: Tracker, auth: dict, store: str
) -> None:
    member, old, new = "M" + uid().upper(), uid("c_"), uid("c_")
    apply(tracker, linked_event(tracker, old, member))
    apply(tracker, linked_event(tracker, new, member))  # other partition: may come first
    apply(tracker, _unlinked(tracker, old, member))
    purchase = tx(member_id=member)
    post(client, auth["pos"], store, purchase)
    assert _sales_of(tracker, store, purchase) == [new]
