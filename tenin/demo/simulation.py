"""The simulated week: customers chat through signed webhooks and shop through the POS feed.

The simulator's hidden response model (shared/model/simulator) decides what each shopper does;
tenin only sees what a real deployment would see: webhooks, POS transactions and the API.
POS transactions are posted as they happen, stamped with the wall clock, while the demo
keeps its own record of which simulated day each coupon was issued and redeemed on.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from shared.coupons import coupon_key, verify_code
from shared.model.features import DecisionContext, OfferFeatures
from shared.model.simulator import JST, Customer, Population, ShoppingSimulator, p_redeem
from tenin.clients import LineWebhookClient, PosClient, line_event
from tenin.demo.linking import MemberSite

QR_URL = re.compile(r"/coupons/([^/]+)/qr\.png$")
DEALS_TEXT = {"ja": "今日のクーポンある？", "en": "any coupons today?", "id": "ada kupon hari ini?"}


@dataclass
class IssuedCoupon:
    code: str
    customer: Customer
    day: int
    offer_index: int
    context: DecisionContext
    true_p: float
    redeemed_day: int | None = None


@dataclass
class WeekRecord:
    """What the demo observed, for the summary and the charts."""

    days: int
    issued_per_day: list[int] = field(default_factory=list)
    redeemed_per_day: list[int] = field(default_factory=list)
    coupons: dict[str, IssuedCoupon] = field(default_factory=dict)
    kind_messages: int = 0
    chat_events: int = 0
    chat_seconds: float = 0.0
    pos_transactions: int = 0
    pos_seconds: float = 0.0
    pos_redeemed: int = 0
    pos_rejected: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class WeekDriver:
    """Drives one simulated week against the running services."""

    population: Population
    shop: ShoppingSimulator
    webhooks: LineWebhookClient
    tills: dict[str, PosClient]
    line: Any  # the LINE API recording server
    offers: list[OfferFeatures]
    valid_hours: list[int]
    secret_key: str
    seed: int
    record: WeekRecord
    members: MemberSite | None = None  # links the linked members' cards on day 0
    concurrency: int = 8

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng([self.seed, 11])
        self._key = coupon_key(self.secret_key)
        self._seen_codes: set[str] = set()

    # --- chat ---------------------------------------------------------------------

    def _sim_time(self, day: int, hour: int) -> datetime:
        return self.population.start + timedelta(
            days=day, hours=hour, minutes=int(self._rng.integers(60))
        )

    def _send(self, jobs: list[tuple[Customer, dict[str, Any]]]) -> None:
        """Post webhooks concurrently (each customer's own events stay in order)."""
        by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for customer, event in jobs:
            if "replyToken" in event:
                self.line.own_reply_token(event["replyToken"], customer.user_id)
            by_customer[customer.user_id].append(event)

        def post_all(events: list[dict[str, Any]]) -> None:
            for event in events:
                response = self.webhooks.post([event])
                if response.status_code != 200:
                    raise RuntimeError(
                        f"webhook answered {response.status_code}: {response.text[:300]}"
                    )

        start = time.perf_counter()
        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(post_all, by_customer.values()))
        self.record.chat_seconds += time.perf_counter() - start
        self.record.chat_events += len(jobs)

    def chat_day(self, day: int) -> list[Customer]:
        """Day 0: everyone follows (linked members link their card); then some ask for deals."""
        jobs: list[tuple[Customer, dict[str, Any]]] = []
        askers: list[Customer] = []
        for c in self.population:
            hour = int(self._rng.choice(24, p=c.traits.hour_profile))
            at = self._sim_time(day, hour)
            if day == 0:
                jobs.append((c, line_event("follow", c.user_id, at)))
                if c.linked and self.members is not None:
                    later = at + timedelta(minutes=1)
                    jobs.append(
                        (c, line_event("postback", c.user_id, later, postback="action=link"))
                    )
                askers.append(c)
            elif self._rng.random() < 0.35:
                jobs.append((c, line_event("message", c.user_id, at, text=DEALS_TEXT[c.language])))
                askers.append(c)
        self._send(jobs)
        return askers

    def collect_coupons(self, day: int, askers: list[Customer], timeout: float = 120.0) -> int:
        """Wait until every asker got an answer and the stream is quiet; hand out the coupons."""
        deadline = time.monotonic() + timeout
        pending = {c.user_id for c in askers}
        last_count, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            delivered = self.line.delivered
            answered = {d.to for d in delivered} | {
                self.line_owner(d.reply_token) for d in delivered if d.reply_token
            }
            pending -= answered
            if len(delivered) != last_count:
                last_count, quiet_since = len(delivered), time.monotonic()
            if not pending and time.monotonic() - quiet_since > 1.5:
                break
            time.sleep(0.2)
        issued = 0
        by_user = {c.user_id: c for c in self.population}
        for d in self.line.delivered:
            user = d.to or self.line_owner(d.reply_token)
            for message in d.messages:
                match = QR_URL.search(str(message.get("originalContentUrl", "")))
                if not match or match.group(1) in self._seen_codes or user not in by_user:
                    continue
                self._seen_codes.add(match.group(1))
                self._hand_out(match.group(1), by_user[user], day)
                issued += 1
        return issued

    def line_owner(self, token: str | None) -> str | None:
        return self.line.owner_of(token)

    def _hand_out(self, code: str, customer: Customer, day: int) -> None:
        claims = verify_code(self._key, code)
        offer = self.offers[claims.offer_index]
        issued_at = self._sim_time(day, 12)
        context = DecisionContext(
            local_hour=issued_at.hour,
            weekday=issued_at.weekday(),
            intent="deal_seeking",  # the simulator's name for the chat's "wants_deals"
            sentiment=0.2,
            language=customer.language,
        )
        self.shop.issue_coupon(
            customer.customer_id,
            code,
            offer,
            context,
            issued_at,
            issued_at + timedelta(hours=self.valid_hours[claims.offer_index]),
        )
        self.record.coupons[code] = IssuedCoupon(
            code, customer, day, claims.offer_index, context, p_redeem(customer, context, offer)
        )

    # --- shopping -----------------------------------------------------------------

    def shop_day(self, day: int) -> int:
        """Post the day's visits through each store's till; returns redemptions."""
        visits = self.shop.day((self.population.start + timedelta(days=day)).date())
        by_store: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for visit in visits:
            tx = visit.to_pos_transaction()
            tx["occurred_at"] = datetime.now(UTC).astimezone(JST).isoformat()
            by_store[visit.store_id].append(tx)
        redeemed = 0
        start = time.perf_counter()
        for store, transactions in by_store.items():
            for i in range(0, len(transactions), 1000):
                response = self.tills[store].transactions(transactions[i : i + 1000])
                if response.status_code != 200:
                    raise RuntimeError(
                        f"POS feed answered {response.status_code}: {response.text[:300]}"
                    )
                redeemed += self._count(response.json()["results"], day)
        self.record.pos_seconds += time.perf_counter() - start
        self.record.pos_transactions += len(visits)
        return redeemed

    def _count(self, results: list[dict[str, Any]], day: int) -> int:
        redeemed = 0
        for result in results:
            for coupon in result.get("coupons", []):
                if coupon["status"] == "redeemed":
                    redeemed += 1
                    self.record.pos_redeemed += 1
                    issued = self.record.coupons.get(coupon["code"])
                    if issued is not None:
                        issued.redeemed_day = day
                else:
                    self.record.pos_rejected[coupon.get("reason") or "unknown"] += 1
        return redeemed

    def run_day(self, day: int) -> tuple[int, int]:
        """One simulated day: chat, hand out coupons, shop."""
        askers = self.chat_day(day)
        if day == 0 and self.members is not None:
            members = [c for c in self.population if c.linked]
            at = self._sim_time(day, 23)
            self.members.link_cards(members, self.webhooks, self.line, at)
        issued = self.collect_coupons(day, askers)
        redeemed = self.shop_day(day)
        self.record.issued_per_day.append(issued)
        self.record.redeemed_per_day.append(redeemed)
        return issued, redeemed
