"""Following (issue 11, finding 5): the first follow is kept, re-follows farm no offers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.chat_agent.models import Customer
from shared.events import make_event
from tests.support.line_payloads import follow_event, text_event, unfollow_event, user_id
from tests.unit.chat_agent.conftest import Harness, customer_of
from tests.unit.chat_agent.test_inbound import activate_campaign

DAY_MS = 86_400_000


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_a_refollow_keeps_the_first_follow_time(harness: Harness) -> None:
    user = user_id()
    first = _ms(harness.clock.now) - 40 * DAY_MS
    harness.send([follow_event(user, ts=first)])
    harness.send([unfollow_event(user, ts=first + DAY_MS)])
    harness.send([follow_event(user, ts=first + 2 * DAY_MS)])
    followed = harness.events("customer.followed", customer_of(user))
    first_at = datetime.fromtimestamp(first / 1000, UTC)
    assert [e.payload["first_followed_at"] for e in followed] == [
        first_at.isoformat().replace("+00:00", "Z")
    ] * 2
    with harness.deps.sessions() as session:
        customer = session.get(Customer, customer_of(user))
        assert customer is not None and customer.first_followed_ms == first


def test_a_refollow_within_the_window_requests_no_offer(harness: Harness) -> None:
    """Issue 11: every follow requested an offer, so unfollow+follow farmed coupons."""
    activate_campaign(harness)
    user = user_id()
    now = _ms(harness.clock.now)
    harness.send([follow_event(user, ts=now - 10_000)])
    harness.send([unfollow_event(user, ts=now - 5_000)])
    harness.send([follow_event(user, ts=now)])
    assert len(harness.events("offer.requested", customer_of(user))) == 1
    assert len(harness.deliveries(customer_of(user))) == 1, "the re-follow is still greeted"


def test_a_refollow_after_the_window_requests_an_offer_again(harness: Harness) -> None:
    activate_campaign(harness)
    user = user_id()
    now = _ms(harness.clock.now)
    window_days = harness.settings.refollow_offer_days
    long_ago = now - int((window_days + 1) * DAY_MS)
    harness.send([follow_event(user, ts=long_ago)])
    harness.send([unfollow_event(user, ts=long_ago + 1_000)])
    harness.send([follow_event(user, ts=now)])
    assert len(harness.events("offer.requested", customer_of(user))) == 2


def test_standby_events_are_ignored_by_the_worker(harness: Harness) -> None:
    """A standby event that reached the topic anyway changes nothing and gets no answer."""
    user = user_id()
    event = text_event(user, "hello")
    event["mode"] = "standby"
    harness.publish(
        make_event(
            "line.webhook_event",
            {"destination": "U0", "event": event},
            key=customer_of(user),
            producer="chat_agent",
        )
    )
    assert harness.deliveries(customer_of(user)) == []


def test_one_customer_flooding_messages_is_limited(harness: Harness) -> None:
    user, other = user_id(), user_id()
    burst = harness.deps.limits["line_user"].burst
    start = _ms(harness.clock.now - timedelta(seconds=1))
    flood = [text_event(user, f"hello {i}", ts=start + i) for i in range(burst * 3)]
    harness.send(flood)
    harness.send([text_event(other, "hello")])
    # The bucket refills at rate_per_s while the test runs: a few more may pass.
    answered = len(harness.deliveries(customer_of(user)))
    assert burst <= answered < burst * 2
    assert len(harness.deliveries(customer_of(other))) == 1
