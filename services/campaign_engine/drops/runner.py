"""The drop runner: decides a queued drop's eligible followers, a page at a time
(docs/interfaces.md § Campaign drops; a component of the campaign_engine worker).

Each step takes one drop row with `SELECT … FOR UPDATE SKIP LOCKED` (so two runners never
page one drop at once; a runner keeps the drop it holds a lease on), reads the next page
of eligible followers after the drop's cursor and, in that same transaction, records them
as drop members under a request id derived from (drop, customer), decides their requests
through the normal decision path (holdout, caps, budget, pacing, policy:
decisions/decide.py `decide_within`, whose `offer.decided` events go out through the
outbox) and advances the cursor. A runner killed mid-page commits nothing of that page
(what it reserved in Redis is reconciled at the next start, docs/architecture.md
§ Decisions); the next one resumes from the committed cursor, and the derived request id
means a customer is never asked twice for one drop.

If deciding a page fails, the page is retried the bus way: its requests go to
`offer.requests` through the outbox, and the decision consumer decides them with its
retries, batch splitting and dead-letter topic, so one poison follower cannot stall the
drop. A runner built without a decider (some tests) always pages that way.
With `max_messages` the runner pages only as many members as coupons may still go out, and
waits for their decisions before the next page, so the drop never issues more coupons
than it may push.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import structlog
from sqlalchemy import Table, or_, select
from sqlalchemy.orm import Session

from services.campaign_engine.decisions.decide import DecidedBatch
from services.campaign_engine.drops.eligible import Follower, eligible_page
from services.campaign_engine.drops.progress import counts
from services.campaign_engine.features.store import FeatureSource
from services.campaign_engine.models import PRODUCER, Campaign, Drop, DropMember, Outbox
from shared.db import unit_of_work, utcnow
from shared.events import OfferContext, OfferRequested
from shared.ids import random_uuid
from shared.outbox import Draft, outbox_rows, outbox_writer
from shared.quiet_hours import DEFAULT_QUIET_HOURS, customer_zone
from shared.rows import RowWriter

log = structlog.get_logger(__name__)

MEMBER_TABLE = cast(Table, DropMember.__table__)
# One multi-row statement per table and page (shared/rows.py), built once.
_MEMBERS = RowWriter(MEMBER_TABLE, ("drop_id", "customer_id", "request_id"))
_OUTBOX = outbox_writer(Outbox)
# A drop asks with no expressed need (the model's neutral intent).
DROP_INTENT = "other"
# Decides a page's requests in the page's transaction (Engine.decide_within).
PageDecider = Callable[[Session, Sequence[OfferRequested]], DecidedBatch]


def drop_request_id(drop_id: str, customer_id: str) -> str:
    """The request id of a drop member: the same for the same (drop, customer), always."""
    return str(uuid.uuid5(uuid.UUID(drop_id), customer_id))


@dataclass
class DropRunner:
    """Pages queued and running drops, one transaction per page."""

    sessions: Callable[[], Session]
    features: Callable[[], FeatureSource] | None = None
    decide: PageDecider | None = None
    page_size: int = 1000
    lease_s: float = 10.0
    poll_s: float = 0.5
    clock: Callable[[], datetime] = utcnow
    owner: str = field(default_factory=lambda: random_uuid().hex)
    # Told how many members each page added, after its commit (shared/table_stats.py).
    grown: Callable[[int], None] | None = None
    # Pages (drop id, cursor) whose deciding failed here: retried the bus way.
    _via_bus: set[tuple[str, str | None]] = field(default_factory=set, init=False, repr=False)

    def run(self, stop: threading.Event) -> None:
        """Page drops until `stop` is set; a failed step is logged and tried again."""
        while not stop.is_set():
            try:
                worked = self.step()
            except Exception:
                log.exception("drop_step_failed")
                worked = False
            if not worked:
                stop.wait(self.poll_s)

    def step(self) -> bool:
        """Page one drop once; True when it recorded members or finished paging."""
        decided: list[DecidedBatch] = []
        paged: list[int] = []
        try:
            with unit_of_work(self.sessions) as session:
                worked = self._page(session, self.clock(), decided, paged)
        except BaseException:
            for batch in decided:
                batch.rolled_back()
            raise
        for batch in decided:
            batch.committed()
        if paged and self.grown is not None:
            self.grown(sum(paged))
        return worked

    def _page(
        self, session: Session, now: datetime, decided: list[DecidedBatch], paged: list[int]
    ) -> bool:
        """One step in the caller's transaction; a page decided here is added to `decided`,
        the number of members it recorded to `paged`."""
        drop = self._claim(session, now)
        if drop is None:
            return False
        campaign = session.execute(
            select(Campaign).where(Campaign.campaign_id == drop.campaign_id)
        ).scalar_one()
        if campaign.status == "ended":
            drop.status, drop.error, drop.updated_at = "failed", "campaign ended", now
            log.warning("drop_failed_campaign_ended", drop_id=drop.drop_id)
            return True
        if campaign.status != "active":
            return False  # paused: resume when it is active again
        limit = self._page_limit(session, drop)
        if limit == 0:
            return False
        page = eligible_page(
            session,
            [campaign.audience, drop.audience],
            after=drop.cursor,
            limit=limit,
            features=self.features() if self.features else None,
            now=now,
        )
        if page.last_id is None:
            drop.status, drop.paged_at, drop.updated_at = "paged", now, now
            log.info("drop_paged", drop_id=drop.drop_id, members=drop.members)
            return True
        followers = page.followers
        self._ask(session, drop, followers, now, decided)
        paged.append(len(followers))
        drop.cursor, drop.status, drop.updated_at = page.last_id, "running", now
        drop.members += len(followers)
        return True

    def _claim(self, session: Session, now: datetime) -> Drop | None:
        """The next drop to page (locked), leased to this runner."""
        query = (
            select(Drop)
            .where(
                Drop.status.in_(("queued", "running")),
                or_(Drop.send_after.is_(None), Drop.send_after <= now),
                or_(
                    Drop.lease_owner == self.owner,
                    Drop.lease_until.is_(None),
                    Drop.lease_until < now,
                ),
            )
            .order_by(Drop.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        drop = session.execute(query).scalar_one_or_none()
        if drop is not None:
            drop.lease_owner = self.owner
            drop.lease_until = now + timedelta(seconds=self.lease_s)
        return drop

    def _page_limit(self, session: Session, drop: Drop) -> int:
        """Followers to read this step: a page, or what `max_messages` still allows once
        every member asked so far has its decision (0: wait)."""
        if drop.max_messages is None:
            return self.page_size
        so_far = counts(session, drop)
        if so_far.decided < so_far.eligible:
            return 0
        left = drop.max_messages - so_far.coupons
        if left <= 0:
            drop.status, drop.paged_at = "paged", self.clock()
            return 0
        return min(self.page_size, left)

    def _ask(
        self,
        session: Session,
        drop: Drop,
        followers: list[Follower],
        now: datetime,
        decided: list[DecidedBatch],
    ) -> None:
        """Record the members and decide their requests (or, the bus way, add them to the
        outbox), in the caller's transaction, one statement per table whatever the page size."""
        if not followers:
            return
        requests = drop_requests(drop, followers, now)
        conn = session.connection()
        _MEMBERS.write(
            conn,
            [
                {"drop_id": drop.drop_id, "customer_id": r.customer_id, "request_id": r.request_id}
                for r in requests
            ],
        )
        page = (drop.drop_id, drop.cursor)
        if self.decide is None or page in self._via_bus:
            drafts = [Draft("offer.requested", r.customer_id, r.model_dump()) for r in requests]
            _OUTBOX.write(conn, outbox_rows(drafts, PRODUCER, now))
            self._via_bus.discard(page)
            return
        try:
            decided.append(self.decide(session, requests))
        except Exception:
            log.exception("drop_page_not_decided_retried_via_bus", drop_id=drop.drop_id)
            self._via_bus.add(page)
            raise


def drop_requests(drop: Drop, followers: Sequence[Follower], now: datetime) -> list[OfferRequested]:
    """The `offer.requested` of each follower of a page.

    A page's requests differ only in the customer (their language and UTC offset): each
    (language, offset)'s request is validated once, and every follower's is a copy with its
    own request id and customer id. The hour in the request is the customer's own where
    their offset is known, else the drop's zone's.
    """
    fallback = (drop.quiet_hours or DEFAULT_QUIET_HOURS)["timezone"]
    templates: dict[tuple[str, int | None], OfferRequested] = {}
    requests = []
    for follower in followers:
        kind = (follower.language, follower.utc_offset_minutes)
        template = templates.get(kind)
        if template is None:
            local = now.astimezone(customer_zone(follower.utc_offset_minutes, fallback))
            template = templates[kind] = _template(drop, follower, local)
        requests.append(
            template.model_copy(
                update={
                    "request_id": drop_request_id(drop.drop_id, follower.customer_id),
                    "customer_id": follower.customer_id,
                }
            )
        )
    return requests


def _template(drop: Drop, follower: Follower, local: datetime) -> OfferRequested:
    """One follower's `offer.requested`, validated (the model of a page's others)."""
    return OfferRequested(
        request_id=drop_request_id(drop.drop_id, follower.customer_id),
        customer_id=follower.customer_id,
        context=OfferContext(
            intent=DROP_INTENT,
            sentiment=0.0,
            language=follower.language,
            local_hour=local.hour,
            weekday=local.weekday(),
        ),
        drop_id=drop.drop_id,
        utc_offset_minutes=follower.utc_offset_minutes,
    )
