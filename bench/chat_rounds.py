"""The rounds of the chat latency bench (bench/chat_e2e_latency.py): one new customer's
「クーポンある？」 sent as a signed webhook, timed until the recording LINE server has the
answer, and the figures of a series of them."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import requests

from bench.chat_stack import summary
from services.chat_agent.line.events import customer_id_for, parse_event
from shared.config import Settings
from tenin.line_recorder import LineRecorder
from tests.support.line_payloads import signed_webhook, text_event, user_id


@dataclass(frozen=True)
class Round:
    """One customer's 「クーポンある？」: when it was sent, acknowledged and answered."""

    started: float
    acked: float
    answered: float
    coupon: bool
    customer_id: str
    envelope_id: str

    @property
    def stamp(self) -> tuple[str, float, float, str]:
        """What bench/chat_legs.py needs of it."""
        return (self.customer_id, self.started, self.answered, self.envelope_id)


def webhook_round(
    http: requests.Session,
    base: str,
    line: LineRecorder,
    settings: Settings,
    secret: str,
    timeout: float,
) -> Round:
    """A new customer asks for a coupon; returns once the recorder has the answer."""
    user = user_id()
    event = text_event(user, "クーポンある？")
    line.own_reply_token(event["replyToken"], user)
    body, headers = signed_webhook(secret, [event])
    started = time.time()
    response = http.post(base + "/webhooks/line", data=body, headers=headers)
    acked = time.time()
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + timeout
    got: list[Any] = []
    while not got and time.monotonic() < deadline:
        # The recorder stamps the arrival itself, so looking every 10 ms does not change
        # the figure, and leaves the GIL to the stack.
        time.sleep(0.01)
        got = line.delivered_to(user)
    if not got:
        raise SystemExit(f"no answer within {timeout}s")
    return Round(
        started=started,
        acked=acked,
        answered=got[0].at,
        coupon=any(m["type"] == "image" for m in got[0].messages),
        customer_id=customer_id_for(settings.pseudonym_key, user),
        envelope_id=str(parse_event(event).envelope_id),
    )


def report(rounds: list[Round]) -> list[str]:
    """The figures of the rounds: acks, coupons, answers without one."""
    coupons = [r.answered - r.started for r in rounds if r.coupon]
    without = [r.answered - r.started for r in rounds if not r.coupon]
    lines = [
        summary("webhook ack", [r.acked - r.started for r in rounds]),
        summary("webhook -> coupon delivered", coupons),
    ]
    if without:
        lines.append(summary("webhook -> no-coupon answer", without))
    return lines


def ratio(rounds: list[Round], hops: list[float]) -> float:
    """p50 webhook -> coupon over p50 of the anchor."""
    coupons = [r.answered - r.started for r in rounds if r.coupon]
    return statistics.median(coupons) / statistics.median(hops) if coupons else float("nan")
