"""The demo's member site: loyalty members link their cards through LINE's account link.

A member asks in chat (the `link` button); chat_agent answers with the member-site link
carrying a link token from the (recording) platform; the member site, having "signed the
member in", trades the token for a nonce; the platform then sends `accountLink`
(docs/interfaces.md § Account link).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from shared.model.simulator import Customer
from tenin.clients import LineWebhookClient, line_event


@dataclass(frozen=True)
class MemberSite:
    """The retailer's member site, with its `members` key."""

    chat_agent_url: str
    members_key: str

    def link_cards(
        self,
        customers: list[Customer],
        webhooks: LineWebhookClient,
        line: Any,
        at: datetime,
        timeout: float = 120.0,
    ) -> int:
        """Complete the link of every customer who asked for one; returns how many."""
        tokens = self._tokens_for({c.user_id for c in customers}, line, timeout)
        linked = 0
        for customer in customers:
            token = tokens.get(customer.user_id)
            if token is None or customer.member_id is None:
                continue
            answer = requests.post(
                f"{self.chat_agent_url}/v1/members/link-nonces",
                json={"member_id": customer.member_id, "link_token": token},
                headers={"Authorization": f"Bearer {self.members_key}"},
                timeout=10,
            )
            if answer.status_code != 201:
                raise RuntimeError(f"link nonce: {answer.status_code} {answer.text[:300]}")
            event = line_event("accountLink", customer.user_id, at)
            event["link"] = {"result": "ok", "nonce": answer.json()["nonce"]}
            response = webhooks.post([event])
            if response.status_code != 200:
                raise RuntimeError(f"webhook answered {response.status_code}")
            linked += 1
        return linked

    @staticmethod
    def _tokens_for(users: set[str], line: Any, timeout: float) -> dict[str, str]:
        """The newest link token the platform issued for each user (waits for all)."""
        deadline = time.monotonic() + timeout
        while True:
            tokens = {user: token for token, user in line.link_tokens.items() if user in users}
            if len(tokens) == len(users) or time.monotonic() > deadline:
                return tokens
            time.sleep(0.2)
