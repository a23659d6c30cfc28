"""Decisions on real PostgreSQL and Redis: budgets and caps under concurrency, duplicates,
codes, Redis down, and the release of a reservation whose decision fails to commit."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from services.campaign_engine.bootstrap import Engine
from services.campaign_engine.features import CustomerFeatureStore
from services.campaign_engine.models import Coupon, Decision, Outbox
from shared.coupons import CodeRejected, ForgedCode, UnknownCode, normalize_code, verify_code
from shared.db import unit_of_work, utcnow
from shared.events import Envelope, decode
from tests.unit.campaign_engine.fakes import active_campaign as _active_campaign
from tests.unit.campaign_engine.fakes import offer_request


def active_campaign(sessions: Callable[[], Session], **over: Any) -> Any:
    """An active campaign around the real clock (the engine here runs on it)."""
    return _active_campaign(sessions, utcnow(), **over)


def concurrently(engine: Engine, requests: list[Envelope], workers: int = 50) -> list[Any]:
    """Decide every request from many threads, all released at the same moment."""
    start = threading.Event()

    def one(envelope: Envelope) -> Any:
        start.wait(timeout=30)
        return engine.decide(envelope)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(one, r) for r in requests]
        start.set()
        return [f.result() for f in futures]


def reasons(sessions: Callable[[], Session]) -> Counter[str | None]:
    with sessions() as session:
        bodies = session.execute(select(Outbox.body)).scalars().all()
    return Counter(
        e.payload["reason"]
        for e in (decode(b.encode()) for b in bodies)
        if e.type == "offer.decided"
    )


def coupon_count(sessions: Callable[[], Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Coupon)) or 0)


def test_200_concurrent_decisions_against_a_budget_of_50_issue_exactly_50(
    engine: Engine,
    sessions: Callable[[], Session],
) -> None:
    campaign = active_campaign(sessions, budget={"max_coupons": 50})
    results = concurrently(engine, [offer_request() for _ in range(200)])

    issued = [d for d in results if d.coupon_code]
    assert len(issued) == 50
    assert len({d.coupon_code for d in issued}) == 50
    assert coupon_count(sessions) == 50
    assert reasons(sessions) == Counter({None: 50, "budget_exhausted": 150})
    usage = engine.reservations.usage(campaign.campaign_id, "nobody", "19700101")
    assert usage is not None and usage.issued == 50
    serials = sorted(verify_code(engine.coupon_key, d.coupon_code).serial for d in issued)
    assert serials == list(range(1, 51))  # nothing released, nothing skipped


def test_a_daily_cap_of_one_holds_under_20_concurrent_requests_from_one_customer(
    engine: Engine,
    sessions: Callable[[], Session],
) -> None:
    active_campaign(sessions, caps={"per_customer_per_day": 1, "per_customer_total": None})
    customer = "c_one_customer_cap"
    results = concurrently(engine, [offer_request(customer) for _ in range(20)], workers=20)
    assert sum(1 for d in results if d.coupon_code) == 1
    assert reasons(sessions) == Counter({None: 1, "cap_reached": 19})
    assert coupon_count(sessions) == 1


def test_the_money_budget_holds_under_concurrency(
    engine: Engine, sessions: Callable[[], Session]
) -> None:
    active_campaign(sessions, budget={"max_coupons": 1000, "max_discount_total": 1000})
    results = concurrently(engine, [offer_request() for _ in range(60)])
    assert sum(1 for d in results if d.coupon_code) == 20  # 1000 yen / 50 yen


def test_a_redelivered_request_decided_concurrently_yields_one_decision_and_one_coupon(
    engine: Engine,
    sessions: Callable[[], Session],
) -> None:
    campaign = active_campaign(sessions)
    request = offer_request()
    results = concurrently(engine, [request] * 10, workers=10)
    assert sum(1 for d in results if d is not None) == 1
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Decision)) == 1
    assert coupon_count(sessions) == 1
    assert sum(reasons(sessions).values()) == 1
    usage = engine.reservations.usage(campaign.campaign_id, request.key, "19700101")
    assert usage is not None and usage.issued == 1  # the losers' reservations were released


def test_codes_with_one_character_changed_or_a_flipped_signature_are_not_genuine(
    engine: Engine,
    sessions: Callable[[], Session],
) -> None:
    active_campaign(sessions)
    code = engine.decide(offer_request()).coupon_code
    key = engine.coupon_key
    assert verify_code(key, code).serial == 1
    body = code.replace("-", "")[2:]
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    for position in range(len(body)):  # every single-character change, anywhere
        for replacement in alphabet:
            if replacement == body[position]:
                continue
            typo = "TN" + body[:position] + replacement + body[position + 1 :]
            with pytest.raises(CodeRejected):
                verify_code(key, typo)
    # Flip each byte of the 44-bit signature, re-computing the check character so the code
    # is well formed: only the missing key can tell, and it does, without a database.
    value = 0
    for ch in body[:22]:
        value = (value << 5) | alphabet.index(ch)
    for byte in range(6):
        flipped = value ^ (0xFF << (8 * byte) & ((1 << 44) - 1))
        symbols = "".join(alphabet[(flipped >> (5 * (21 - i))) & 31] for i in range(22))
        forged = _with_check(symbols)
        assert normalize_code(forged)  # well formed: the check character holds
        with pytest.raises(ForgedCode):
            verify_code(key, forged)
    with pytest.raises(UnknownCode):
        verify_code(key, code[:-1])


def _with_check(symbols: str) -> str:
    """Find the one check symbol that makes the code well formed (the check is public)."""
    for check in "0123456789ABCDEFGHJKMNPQRSTVWXYZ":
        candidate = "TN" + symbols + check
        try:
            return normalize_code(candidate)
        except UnknownCode:
            continue
    raise AssertionError("no check symbol fits")


def test_redis_down_fails_closed_and_still_answers(
    make_engine_for: Callable[..., Engine],
    ce_settings: Any,
) -> None:
    down = make_engine_for(settings=replace(ce_settings, redis_url="redis://127.0.0.1:1/0"))
    active_campaign(down.sessions)
    started = time.monotonic()
    decision = down.decide(offer_request())
    assert time.monotonic() - started < 3.0
    assert (decision.arm, decision.coupon_code) == ("none", None)
    assert reasons(down.sessions) == Counter({"redis_unavailable": 1})


def test_a_reservation_whose_decision_fails_to_commit_is_released(
    engine: Engine,
    sessions: Callable[[], Session],
) -> None:
    campaign = active_campaign(
        sessions,
        budget={"max_coupons": 1},
        caps={"per_customer_per_day": 1, "per_customer_total": 1},
    )
    with unit_of_work(sessions) as session:  # the database refuses the decision's outbox row
        session.execute(
            text("""
            CREATE FUNCTION campaign_engine.refuse() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$;
            CREATE TRIGGER refuse BEFORE INSERT ON campaign_engine.outbox
            FOR EACH ROW EXECUTE FUNCTION campaign_engine.refuse();
        """)
        )
    request = offer_request()
    with pytest.raises(Exception, match="refused by test"):
        engine.decide(request)
    usage = engine.reservations.usage(
        campaign.campaign_id, request.key, time.strftime("%Y%m%d", time.gmtime())
    )
    assert usage is not None
    assert (usage.issued, usage.money, usage.customer_day, usage.customer_total) == (0, 0, 0, 0)
    with unit_of_work(sessions) as session:
        session.execute(text("DROP TRIGGER refuse ON campaign_engine.outbox"))
    # The consumer's retry now succeeds, and the one coupon of the budget is still there.
    assert engine.decide(request).coupon_code is not None


def test_issued_coupons_are_counted_in_the_customers_features(
    engine: Engine,
    sessions: Callable[[], Session],
) -> None:
    active_campaign(sessions)
    request = offer_request()
    engine.decide(request)
    store = CustomerFeatureStore(engine.redis, prefix="ce:cf:")
    assert store.aggregates(request.key).get("issued") == "1"


def _a_row_takes_each_code_first(sessions: Callable[[], Session], *, same_request: bool) -> None:
    """A trigger stores, just before each decision row with a coupon, another row with the
    same code: of the same request (a twin that committed first), or of another request
    (a serial reused)."""
    request_id = "NEW.request_id" if same_request else "'other-' || NEW.request_id"
    with unit_of_work(sessions) as session:
        session.execute(
            text(f"""
            CREATE FUNCTION campaign_engine.first() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN
              IF NEW.customer_id <> 'first' AND NEW.coupon_code IS NOT NULL THEN
                INSERT INTO campaign_engine.decisions (decision_id, request_id, customer_id,
                    arm, propensity, model_version, coupon_code, decided_at)
                VALUES (gen_random_uuid()::text, {request_id}, 'first', 'treatment', 1.0,
                    'test', NEW.coupon_code, now());
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER first BEFORE INSERT ON campaign_engine.decisions
            FOR EACH ROW EXECUTE FUNCTION campaign_engine.first();
        """)
        )


def _usage_issued(engine: Engine, campaign: Any, request: Envelope) -> int:
    day = time.strftime("%Y%m%d", time.gmtime())
    usage = engine.reservations.usage(campaign.campaign_id, request.key, day)
    return usage.issued if usage is not None else 0


def test_a_twin_with_the_same_coupon_code_loses_quietly(
    engine: Engine, sessions: Callable[[], Session]
) -> None:
    """The same request decided concurrently elsewhere, with the reservation it took over
    (so the same code), conflicts on two unique keys: it is a duplicate, not an error."""
    campaign = active_campaign(sessions)
    _a_row_takes_each_code_first(sessions, same_request=True)
    request = offer_request()
    assert engine.decide(request) is None, "decided already: a duplicate"
    with sessions() as session:
        rows = session.execute(select(Decision.customer_id, Decision.request_id)).all()
    assert [tuple(r) for r in rows] == [("first", request.payload["request_id"])]
    assert _usage_issued(engine, campaign, request) == 0, "the loser's reservation given back"


def test_a_coupon_code_already_another_requests_fails_the_batch(
    engine: Engine, sessions: Callable[[], Session]
) -> None:
    """A reused serial must not lose the request quietly as if a twin had decided it."""
    from services.campaign_engine.decisions.record import CouponCodeTaken

    campaign = active_campaign(sessions)
    _a_row_takes_each_code_first(sessions, same_request=False)
    request = offer_request()
    with pytest.raises(CouponCodeTaken):
        engine.decide(request)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Decision)) == 0, "rolled back"
    assert _usage_issued(engine, campaign, request) == 0, "its reservation given back"
