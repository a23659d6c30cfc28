"""The drop runner's feed on real PostgreSQL (docs/interfaces.md § Campaign drops): how
fast it turns followers into drop members + `offer.requested` outbox rows, and the CPU
of this process per follower (the runner shares its process with the decision loop, so
its CPU is what it takes from decisions).

The anchor, measured in the same run on the same database: reading the same followers'
pages alone (the runner's floor: it cannot feed faster than it reads). Goal (issue 12):
the runner feeds >= 2,000 followers/s, well above the decision loop's rate.

Run: eval "$(scripts/services up)"; python bench/drop_feed.py [--followers 20000] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Table, insert, select  # noqa: E402

from bench.fresh_db import on_fresh_databases, print_medians  # noqa: E402
from services.campaign_engine.campaigns.commands import change_status, create_campaign  # noqa: E402
from services.campaign_engine.campaigns.schemas import CampaignIn  # noqa: E402
from services.campaign_engine.drops.commands import queue_drop  # noqa: E402
from services.campaign_engine.drops.eligible import eligible_page  # noqa: E402
from services.campaign_engine.drops.runner import DropRunner  # noqa: E402
from services.campaign_engine.drops.schemas import DropIn  # noqa: E402
from services.campaign_engine.models import Campaign, Customer  # noqa: E402
from shared.db import make_engine, make_session_factory, unit_of_work, utcnow  # noqa: E402
from tests.support.drop_stack import campaign_body  # noqa: E402


def _seed(sessions: object, n: int) -> str:
    """`n` following customers and an active campaign; returns the campaign id."""
    now = utcnow()
    rows = [
        {"customer_id": f"c_{uuid.uuid4().hex[:16]}", "opted_out": False, "following": True,
         "linked": False, "language": "ja", "updated_at": now}
        for _ in range(n)
    ]  # fmt: skip
    with unit_of_work(sessions) as session:  # type: ignore[arg-type]  # a session factory
        session.execute(insert(cast(Table, Customer.__table__)), rows)
        campaign = create_campaign(session, CampaignIn.model_validate(campaign_body(n)))
        change_status(session, campaign, "activate", now)
        return campaign.campaign_id


def run_feed(url: str, followers: int, page_size: int) -> dict[str, float]:
    """One drop paged to the end; returns its figures (and the anchor's)."""
    db = make_engine(url, pool_size=2)
    sessions = make_session_factory(db)
    try:
        campaign_id = _seed(sessions, followers)
        # The anchor: the same pages read, nothing written.
        cpu, wall, after, read = time.process_time(), time.perf_counter(), None, 0
        with sessions() as session:
            while True:
                page = eligible_page(
                    session, [None], after=after, limit=page_size, features=None, now=utcnow()
                )
                if page.last_id is None:
                    break
                read, after = read + len(page.followers), page.last_id
        read_cpu, read_wall = time.process_time() - cpu, time.perf_counter() - wall
        with unit_of_work(sessions) as session:
            campaign = session.execute(
                select(Campaign).where(Campaign.campaign_id == campaign_id)
            ).scalar_one()
            queue_drop(session, campaign, DropIn.model_validate({"quiet_hours": None}), utcnow())
        runner = DropRunner(sessions, page_size=page_size)
        cpu, wall = time.process_time(), time.perf_counter()
        while runner.step():
            pass
        feed_cpu, feed_wall = time.process_time() - cpu, time.perf_counter() - wall
        assert read == followers, (read, followers)
        return {
            "followers": followers,
            "feed_per_s": followers / feed_wall,
            "feed_cpu_us_per_follower": feed_cpu / followers * 1e6,
            "read_per_s": followers / read_wall,
            "read_cpu_us_per_follower": read_cpu / followers * 1e6,
        }
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="5,000 followers, one run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--page-size", type=int, default=DropRunner.page_size)
    args = parser.parse_args()
    followers, runs = (5_000, 1) if args.quick else (args.followers, args.runs)
    results = on_fresh_databases(
        "tenin_feed", runs, lambda url: run_feed(url, followers, args.page_size)
    )
    print(f"drop runner feed, {followers:,} followers, pages of {args.page_size:,}, {runs} run(s)")
    print_medians(results)
    ratio = statistics.median(r["feed_cpu_us_per_follower"] for r in results) / statistics.median(
        r["read_cpu_us_per_follower"] for r in results
    )
    print(f"  feed CPU / read CPU (the anchor): {ratio:.1f}x")


if __name__ == "__main__":
    main()
