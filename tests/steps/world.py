"""What a scenario knows: its campaign, its customers, their coupons, the till's answers.

Every interaction goes through a public interface: signed webhooks, the LINE recording
server, the POS feed and the marketer API.
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from tenin.clients import line_event
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for

QR_URL = re.compile(r"/coupons/([^/]+)/qr\.png$")


@dataclass
class Customer:
    user_id: str
    member_id: str | None = None
    language: str = "ja"


@dataclass
class World:
    stack: RunningStack
    campaigns: list[str] = field(default_factory=list)
    customers: list[Customer] = field(default_factory=list)
    codes: dict[str, str] = field(default_factory=dict)  # user_id -> last coupon code
    results: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    deliveries_before: dict[str, int] = field(default_factory=dict)
    coupons_before: int = 0  # the current customer's coupons before their latest message

    @property
    def campaign_id(self) -> str:
        return self.campaigns[-1]

    @property
    def customer(self) -> Customer:
        return self.customers[-1]

    # --- marketer -------------------------------------------------------------------

    def create_active_campaign(self, name: str, holdout_pct: float, max_coupons: int = 1000) -> str:
        now = datetime.now(UTC)
        body = {
            "name": f"{name} {uuid.uuid4().hex[:6]}",
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(days=7)).isoformat(),
            "offers": [
                {
                    "title": "¥50 off onigiri",
                    "discount": {"type": "amount", "value": 50},
                    "applies_to": {"categories": ["onigiri"]},
                    "min_basket": 300,
                    "valid_hours": 72,
                }
            ],
            "budget": {"max_coupons": max_coupons},
            # Caps high enough that they never hide a duplicate: dedupe must do that work.
            # (and no lifetime cap: a campaign without one would get the default of 3).
            "caps": {"per_customer_per_day": 10, "per_customer_total": None},
            "holdout_pct": holdout_pct,
            "revenue_share": {"pct": 10.0, "basis": "attributed"},
            "per_call_fee": 3,
            # "a budget of 2 coupons" means those 2 go at once: no even pacing over the week.
            "pacing": "asap",
        }
        created = self.stack.marketer.create_campaign(body)
        assert created.status_code == 201, created.text
        campaign_id = created.json()["campaign_id"]
        activated = self.stack.marketer.transition(campaign_id, "activate")
        assert activated.status_code == 200, activated.text
        self.campaigns.append(campaign_id)
        # Campaign events reach the other services asynchronously; start once the tracker has it.
        self.report_when(lambda r: r["status"] == "active", "the tracker to learn of the campaign")
        return campaign_id

    def end_campaigns(self) -> None:
        for campaign_id in self.campaigns:
            ended = self.stack.marketer.transition(campaign_id, "end")
            assert ended.status_code in (200, 409), ended.text

    def report(self) -> dict[str, Any]:
        response = self.stack.marketer.report(self.campaign_id)
        assert response.status_code == 200, response.text
        return response.json()

    def report_when(self, predicate: Any, what: str, timeout: float = 60) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            response = self.stack.marketer.report(self.campaign_id)
            if response.status_code == 404:  # the tracker has not heard of the campaign yet
                return None
            assert response.status_code == 200, response.text
            report = response.json()
            return report if predicate(report) else None

        return wait_for(probe, timeout=timeout, what=what)

    # --- customers ------------------------------------------------------------------

    def new_customer(self, linked: bool = False) -> Customer:
        member = f"M{random.randint(10**8, 10**9 - 1)}" if linked else None
        customer = Customer(user_id="U" + uuid.uuid4().hex, member_id=member)
        self.customers.append(customer)
        return customer

    def send(
        self,
        customer: Customer,
        kind: str,
        *,
        text: str | None = None,
        times: int = 1,
        postback: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        event = line_event(kind, customer.user_id, datetime.now(UTC), text=text, postback=postback)
        event.update(extra or {})
        if "replyToken" in event:
            self.stack.line.own_reply_token(event["replyToken"], customer.user_id)
        self.deliveries_before[customer.user_id] = len(
            self.stack.line.delivered_to(customer.user_id)
        )
        self.coupons_before = len(set(self.coupon_codes(customer)))
        for attempt in range(times):
            event["deliveryContext"] = {"isRedelivery": attempt > 0}
            response = self.stack.webhooks.post([event])
            assert response.status_code == 200, response.text

    def follow(self, customer: Customer) -> None:
        self.send(customer, "follow")
        self.wait_for_answer(customer)
        if customer.member_id:
            self.link_card(customer, customer.member_id)

    # --- account link (docs/interfaces.md § Account link) -----------------------------

    def ask_to_link(self, customer: Customer) -> str:
        """The "link" button; the link token in the member-site link the clerk answers with."""
        self.send(customer, "postback", postback="action=link")
        texts = [t for d in self.wait_for_answer(customer) for t in d.texts()]
        urls = re.findall(r"https?://[!-~]+", " ".join(texts))
        assert urls, f"no member-site link in {texts!r}"
        [token] = parse_qs(urlsplit(urls[-1]).query)["linkToken"]
        return token

    def link_nonce(self, member_id: str, link_token: str) -> dict[str, Any]:
        """The member site, with the member signed in, asks chat_agent for a nonce."""
        response = requests.post(
            f"{self.stack.services.url('chat_agent')}/v1/members/link-nonces",
            json={"member_id": member_id, "link_token": link_token},
            headers={"Authorization": f"Bearer {self.stack.members_key}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def account_link(self, customer: Customer, nonce: str) -> None:
        """The platform's `accountLink` event once the customer went through its dialog."""
        link = {"link": {"result": "ok", "nonce": nonce}, "replyToken": uuid.uuid4().hex}
        self.send(customer, "accountLink", extra=link)
        self.wait_for_answer(customer)

    def link_card(self, customer: Customer, member_id: str) -> None:
        self.account_link(customer, self.link_nonce(member_id, self.ask_to_link(customer))["nonce"])

    def wait_for_answer(self, customer: Customer, timeout: float = 60) -> list[Any]:
        before = self.deliveries_before.get(customer.user_id, 0)
        return wait_for(
            lambda: self.stack.line.delivered_to(customer.user_id)[before:] or None,
            timeout=timeout,
            what=f"an answer to {customer.user_id[:8]}",
        )

    def coupon_codes(self, customer: Customer) -> list[str]:
        codes = []
        for delivery in self.stack.line.delivered_to(customer.user_id):
            for message in delivery.messages:
                match = QR_URL.search(str(message.get("originalContentUrl", "")))
                if match:
                    codes.append(match.group(1))
        return codes

    def wait_for_coupon(self, customer: Customer, timeout: float = 60) -> str:
        codes = wait_for(
            lambda: self.coupon_codes(customer), timeout=timeout, what="a coupon message"
        )
        self.codes[customer.user_id] = codes[-1]
        return codes[-1]

    def qr_decodes_to_code(self, code: str) -> str:
        import io

        import zxingcpp
        from PIL import Image

        url = f"{self.stack.env['PUBLIC_BASE_URL']}/coupons/{code}/qr.png"
        response = requests.get(url, timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(
            "image/png"
        )
        found = zxingcpp.read_barcodes(Image.open(io.BytesIO(response.content)))
        assert found, "no QR code found in the image"
        return found[0].text

    # --- tills ----------------------------------------------------------------------

    def transaction(
        self, store: str, total: int, codes: list[str], member_id: str | None
    ) -> dict[str, Any]:
        return {
            "transaction_id": f"{store}-{uuid.uuid4().hex[:12]}",
            "occurred_at": datetime.now(UTC).isoformat(),
            **({"member_id": member_id} if member_id else {}),
            "currency": "JPY",
            "total": total,
            "items": [
                {"sku": "4901234567890", "category": "onigiri", "qty": 2, "unit_price": 150},
                {"sku": "4900000000001", "category": "bento", "qty": 1, "unit_price": total - 300},
            ],
            "coupon_codes": codes,
        }

    def pay(self, store: str, transactions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = self.stack.tills[store].transactions(transactions)
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        self.transactions.extend(transactions)
        self.results.extend(results)
        return results
