"""Where the reservation store keeps what in Redis, and its plain reads: the keys of a
campaign's budget hash, a customer's day and all-time counters and a request's hold, and how
a batch's usages and holds are asked for and read back (budget/reservations.py reads them
alone; a decision batch reads them in one pipeline with the features,
decisions/redis_reads.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from services.campaign_engine.budget.limits import Usage


def budget_key(cid: str) -> str:
    # The {campaign} hash tag keeps a campaign's keys in one slot (Redis Cluster-safe).
    return f"ce:{{{cid}}}:budget"


def day_key(cid: str, day: str, customer: str) -> str:
    return f"ce:{{{cid}}}:day:{day}:{customer}"


def total_key(cid: str, customer: str) -> str:
    return f"ce:{{{cid}}}:total:{customer}"


def held_key(cid: str, request_id: str) -> str:
    return f"ce:{{{cid}}}:held:{request_id}"


def queue_usages(
    pipe: redis.client.Pipeline, campaigns: Sequence[tuple[str, str]], customers: Sequence[str]
) -> int:
    """Queue the reads of every (campaign, customer) pair's usage, for (campaign id, its
    day) in `campaigns`: an HMGET per campaign and one MGET of every customer counter.
    Returns how many replies `usages_from` reads."""
    if not campaigns or not customers:
        return 0
    for cid, _ in campaigns:
        pipe.hmget(budget_key(cid), "seeded", "issued", "money", "redeemed")
    pipe.mget(
        [
            key
            for cid, day in campaigns
            for c in customers
            for key in (day_key(cid, day, c), total_key(cid, c))
        ]
    )
    return len(campaigns) + 1


def usages_from(
    replies: Sequence[Any], campaigns: Sequence[tuple[str, str]], customers: Sequence[str]
) -> dict[tuple[str, str], Usage | None]:
    """The usage of every (campaign, customer) pair in the replies to `queue_usages`'s
    commands; None where the campaign is unseeded."""
    if not campaigns or not customers:
        return {}
    *budgets, counts = replies
    out: dict[tuple[str, str], Usage | None] = {}
    at = 0
    for (cid, _), (seeded, issued, money, redeemed) in zip(campaigns, budgets, strict=True):
        for c in customers:
            today, total = counts[at], counts[at + 1]
            at += 2
            out[(cid, c)] = (
                None
                if seeded is None
                else Usage(
                    int(issued or 0),
                    int(money or 0),
                    int(redeemed or 0),
                    int(today or 0),
                    int(total or 0),
                )
            )
    return out


def queue_holds(pipe: redis.client.Pipeline, pairs: Sequence[tuple[str, str]]) -> int:
    """Queue the read of each (campaign, request id) pair's hold; returns how many replies
    `holds_from` reads."""
    if not pairs:
        return 0
    pipe.mget([held_key(cid, request_id) for cid, request_id in pairs])
    return 1


def holds_from(
    values: Sequence[Any], pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, int]]:
    """(face, serial) of each pair's hold in the reply to `queue_holds`'s MGET, where the
    request holds one."""
    out = {}
    for pair, value in zip(pairs, values, strict=True):
        if value:  # "serial|face|has_counter|owner|day key" (lua.RESERVE_MANY)
            text = value.decode() if isinstance(value, bytes) else str(value)
            serial, face, _ = text.split("|", 2)
            out[pair] = (int(face), int(serial))
    return out
