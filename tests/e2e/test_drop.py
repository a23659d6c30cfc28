"""A campaign drop end to end on Kafka, PostgreSQL and Redis, with both workers SIGKILLed
mid-drop and a LINE channel that answers 429 past its rate (docs/interfaces.md
§ Campaign drops): every follower is decided once, every coupon pushed once, nobody twice.
"""

from __future__ import annotations

from typing import Any

from tenin.line_recorder import PUSH
from tests.support.drop_stack import drop_stack
from tests.support.waiting import wait_for

FOLLOWERS = 600


def _progress(client: Any, headers: dict[str, str], path: str) -> dict[str, Any]:
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()  # type: ignore[no-any-return]


def test_a_drop_survives_sigkills_and_messages_nobody_twice(
    real_services: dict[str, str],
) -> None:
    # The channel takes 50 pushes a second (tenin is told 400) and refuses the first three
    # with 429 and Retry-After: the refused are pushed later, once.
    with drop_stack(real_services, push_rate_per_s=50, line_rate=400) as stack:
        stack.seed_followers(FOLLOWERS)
        campaign_id = stack.active_campaign()
        client, headers = stack.marketer()
        stack.line.fail(429, times=3, path=PUSH, retry_after=2)  # whatever the pace
        stack.start("campaign_engine")
        stack.start("chat_agent")
        answer = client.post(
            f"/v1/campaigns/{campaign_id}/drops", json={"quiet_hours": None}, headers=headers
        )
        assert answer.status_code == 202, answer.get_json()
        path = f"/v1/campaigns/{campaign_id}/drops/{answer.get_json()['drop_id']}"
        drop_id = answer.get_json()["drop_id"]

        wait_for(lambda: _progress(client, headers, path)["decided"] >= 150, timeout=120)
        stack.kill("campaign_engine")
        stack.start("campaign_engine")
        wait_for(lambda: _progress(client, headers, path)["pushed"] >= 100, timeout=120)
        stack.kill("chat_agent")
        stack.start("chat_agent")

        done = wait_for(
            lambda: (p := _progress(client, headers, path))["status"] == "done" and p,
            timeout=240,
            what="the drop done",
        )
        decisions = stack.decisions_per_member(drop_id)
        assert len(decisions) == FOLLOWERS and set(decisions.values()) == {1}
        assert done["eligible"] == done["decided"] == FOLLOWERS
        assert done["holdout"] > 0 and done["coupons"] > 0
        assert done["coupons"] + done["holdout"] + done["no_coupon"] == FOLLOWERS
        pushes = stack.pushes_per_user()
        assert max(pushes.values()) == 1, "nobody is pushed twice"
        assert len(pushes) == done["pushed"] == done["coupons"]
        assert done["remaining"] == 0 and done["failed"] == 0
        refused = [c for c in stack.line.calls(PUSH) if c.status == 429]
        assert len(refused) >= 3 and all(pushes[c.body["to"]] == 1 for c in refused)
        assert done["report"]["messages_saved"] == FOLLOWERS - done["pushed"]


def test_with_relay_processes_a_drop_survives_their_sigkills(
    real_services: dict[str, str],
) -> None:
    # TENIN_OUTBOX_RELAY=process: the workers publish nothing themselves; each service's
    # outbox goes out through `tenin relay <service>`, woken by NOTIFY. Both relay
    # processes are SIGKILLed mid-drop (a claim may be on the wire, unmarked) and started
    # again: every decision still reaches chat_agent, and nobody is pushed twice.
    followers = 300
    with drop_stack(real_services, line_rate=400, outbox_relay="process") as stack:
        stack.seed_followers(followers)
        campaign_id = stack.active_campaign()
        client, headers = stack.marketer()
        for service in ("campaign_engine", "chat_agent"):
            stack.start(service)
            stack.start(service, command="relay")
        answer = client.post(
            f"/v1/campaigns/{campaign_id}/drops", json={"quiet_hours": None}, headers=headers
        )
        assert answer.status_code == 202, answer.get_json()
        drop_id = answer.get_json()["drop_id"]
        path = f"/v1/campaigns/{campaign_id}/drops/{drop_id}"

        wait_for(lambda: _progress(client, headers, path)["pushed"] >= 20, timeout=120)
        stack.kill("campaign_engine relay")
        stack.kill("chat_agent relay")
        stack.start("campaign_engine", command="relay")
        stack.start("chat_agent", command="relay")

        done = wait_for(
            lambda: (p := _progress(client, headers, path))["status"] == "done" and p,
            timeout=240,
            what="the drop done",
        )
        decisions = stack.decisions_per_member(drop_id)
        assert len(decisions) == followers and set(decisions.values()) == {1}
        assert done["coupons"] > 0 and done["remaining"] == 0 and done["failed"] == 0
        pushes = stack.pushes_per_user()
        assert max(pushes.values()) == 1, "nobody is pushed twice"
        assert len(pushes) == done["pushed"] == done["coupons"]
