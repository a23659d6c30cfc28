"""Verified card links (issue 11, finding 3): LINE's account-link flow, edge to edge.

The customer asks in chat, chat_agent fetches a link token from the (recording)
platform and answers with the member-site link; the member site trades the token for
a nonce with its `members` key; the platform's `accountLink` event redeems the nonce.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from services.chat_agent.models import Customer, LinkRequest
from shared.auth import create_key
from shared.crypto import member_hash
from shared.db import unit_of_work
from tenin.line_recorder import LineRecorder
from tests.support.line_payloads import (
    account_link_event,
    postback_event,
    text_event,
    user_id,
)
from tests.unit.chat_agent.conftest import (
    MEMBER_SITE,
    UNIT_SETTINGS_SECRET,
    Harness,
    customer_of,
)

NONCES = "/v1/members/link-nonces"


def _customer(harness: Harness, user: str) -> Customer:
    with harness.deps.sessions() as session:
        customer = session.get(Customer, customer_of(user))
        assert customer is not None
        return customer


def _key(harness: Harness, role: str) -> str:
    with unit_of_work(harness.deps.sessions) as session:
        return create_key(session, harness.settings.secret_key, role)


def _link_token_from_chat(harness: Harness, user: str) -> str:
    """Ask to link with the quick-reply button; the link token in the answer."""
    harness.send([postback_event(user, "action=link")])
    [url] = re.findall(r"https?://[!-~]+", harness.texts(customer_of(user))[-1])
    assert url.startswith(MEMBER_SITE + "?")
    [token] = parse_qs(urlsplit(url).query)["linkToken"]
    return token


def _nonce(harness: Harness, member_id: str, token: str) -> dict[str, Any]:
    response = harness.client.post(
        NONCES,
        json={"member_id": member_id, "link_token": token},
        headers={"Authorization": f"Bearer {_key(harness, 'members')}"},
    )
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _link(harness: Harness, user: str, member_id: str) -> None:
    token = _link_token_from_chat(harness, user)
    nonce = _nonce(harness, member_id, token)["nonce"]
    harness.send([account_link_event(user, nonce)])


def test_a_member_number_typed_in_chat_links_nothing(harness: Harness, line: LineRecorder) -> None:
    """Issue 11: typing `M0000001` linked that member to whoever typed it, at once."""
    attacker = user_id()
    harness.send([text_event(attacker, "M0000001")])
    assert _customer(harness, attacker).member_hash is None
    assert harness.events("customer.linked") == []
    [answer] = harness.deliveries(customer_of(attacker))
    explained, link = (m["text"] for m in answer.messages)
    assert "member site" in explained or "会員サイト" in explained
    assert f"{MEMBER_SITE}?linkToken=" in link
    assert list(line.link_tokens.values()) == [attacker], "the token is the platform's"


def test_the_account_link_flow_links_the_member(harness: Harness, line: LineRecorder) -> None:
    user = user_id()
    token = _link_token_from_chat(harness, user)
    assert line.link_tokens[token] == user
    issued = _nonce(harness, "M0000001", token)
    assert len(issued["nonce"]) >= 22, "at least 128 random bits"
    redirect = urlsplit(issued["redirect_url"])
    assert (redirect.scheme, redirect.netloc, redirect.path) == (
        "https",
        "access.line.me",
        "/dialog/bot/accountLink",
    )
    assert parse_qs(redirect.query) == {"linkToken": [token], "nonce": [issued["nonce"]]}
    harness.send([account_link_event(user, issued["nonce"])])
    hashed = member_hash(UNIT_SETTINGS_SECRET, "M0000001")
    assert _customer(harness, user).member_hash == hashed
    [linked] = harness.events("customer.linked", customer_of(user))
    assert linked.payload == {"customer_id": customer_of(user), "member_hash": hashed}
    assert "M0000001" not in str(linked.model_dump(mode="json"))


def test_a_nonce_is_single_use_and_only_for_the_customer_it_was_issued_for(
    harness: Harness,
) -> None:
    victim, attacker = user_id(), user_id()
    nonce = _nonce(harness, "M0000002", _link_token_from_chat(harness, victim))["nonce"]
    harness.send([account_link_event(attacker, nonce)])
    assert _customer(harness, attacker).member_hash is None
    harness.send([account_link_event(victim, nonce)])
    assert _customer(harness, victim).member_hash is None, "the nonce was used up"
    assert harness.events("customer.linked") == []


def test_a_failed_dialog_or_a_late_nonce_links_nothing(harness: Harness) -> None:
    user = user_id()
    failed = _nonce(harness, "M0000003", _link_token_from_chat(harness, user))["nonce"]
    harness.send([account_link_event(user, failed, result="failed")])
    late = _nonce(harness, "M0000003", _link_token_from_chat(harness, user))["nonce"]
    eleven_minutes_on = harness.clock.now + timedelta(minutes=11)
    harness.send([account_link_event(user, late, ts=int(eleven_minutes_on.timestamp() * 1000))])
    assert _customer(harness, user).member_hash is None
    assert harness.events("customer.linked") == []
    persona = harness.deps.persona()
    failed_lines = {
        t for tones in persona.messages["link_failed"].values() for ts in tones.values() for t in ts
    }
    texts = harness.texts(customer_of(user))
    assert texts[1] in failed_lines and texts[3] in failed_lines


def test_a_verified_link_moves_the_member_and_says_so(harness: Harness) -> None:
    first, second = user_id(), user_id()
    card, other_card = "M0000004", "M0000005"
    _link(harness, first, card)
    _link(harness, second, card)  # one customer per member: it leaves `first`
    _link(harness, second, other_card)  # one member per customer: `card` leaves `second`
    hashed = {m: member_hash(UNIT_SETTINGS_SECRET, m) for m in (card, other_card)}
    assert _customer(harness, first).member_hash is None
    assert _customer(harness, second).member_hash == hashed[other_card]
    unlinked = {
        (e.key, e.payload["customer_id"], e.payload["member_hash"])
        for e in harness.events("customer.unlinked")
    }
    assert unlinked == {
        (customer_of(first), customer_of(first), hashed[card]),
        (customer_of(second), customer_of(second), hashed[card]),
    }
    assert len(harness.events("customer.linked")) == 3


def test_the_nonce_endpoint_needs_a_members_key_and_a_token_tenin_asked_for(
    harness: Harness,
) -> None:
    body = {"member_id": "M0000006", "link_token": "never-issued"}
    assert harness.client.post(NONCES, json=body).status_code == 401
    marketer = {"Authorization": f"Bearer {_key(harness, 'marketer')}"}
    assert harness.client.post(NONCES, json=body, headers=marketer).status_code == 403
    members = {"Authorization": f"Bearer {_key(harness, 'members')}"}
    unknown = harness.client.post(NONCES, json=body, headers=members)
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.get_json()["errors"]] == ["link_token"]
    bad = harness.client.post(
        NONCES, json={"member_id": "M\x000006", "link_token": "x"}, headers=members
    )
    assert bad.status_code == 422
    assert [e["field"] for e in bad.get_json()["errors"]] == ["member_id"]


def test_a_used_link_token_gets_no_second_nonce(harness: Harness) -> None:
    user = user_id()
    token = _link_token_from_chat(harness, user)
    harness.send([account_link_event(user, _nonce(harness, "M0000007", token)["nonce"])])
    members = {"Authorization": f"Bearer {_key(harness, 'members')}"}
    again = harness.client.post(
        NONCES, json={"member_id": "M0000008", "link_token": token}, headers=members
    )
    assert again.status_code == 409


def test_link_attempts_are_rate_limited_per_customer(harness: Harness, line: LineRecorder) -> None:
    user, other = user_id(), user_id()
    burst = harness.deps.limits["link"].burst
    for _ in range(burst + 1):
        harness.send([postback_event(user, "action=link")])
    harness.send([postback_event(other, "action=link")])
    issued = list(line.link_tokens.values())
    assert issued.count(user) == burst and issued.count(other) == 1
    last = harness.texts(customer_of(user))[-1]
    assert "linkToken" not in last
    with harness.deps.sessions() as session:
        requests = session.execute(
            select(LinkRequest).where(LinkRequest.customer_id == customer_of(user))
        ).scalars()
        assert len(list(requests)) == burst


@pytest.mark.parametrize("status", [500, 429])
def test_a_platform_failure_answers_without_a_link(
    harness: Harness, line: LineRecorder, status: int
) -> None:
    user = user_id()
    line.fail(status, path=f"/v2/bot/user/{user}/linkToken")
    harness.send([postback_event(user, "action=link")])
    [answer] = harness.texts(customer_of(user))
    assert "linkToken" not in answer and "http" not in answer
