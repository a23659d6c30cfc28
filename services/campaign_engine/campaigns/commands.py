"""Campaign commands behind the marketer API: create, change, move through the lifecycle.

Every change of a live campaign is announced on campaign.events with a full snapshot,
written to the outbox in the same transaction, so other services' copies (the tracker
validates codes offline from it) never miss a tightened offer.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.campaign_engine.campaigns.offers import live_offers, snapshot_offer, stored_offer
from services.campaign_engine.campaigns.rules import (
    STATUS_EVENT,
    check_update,
    merge_offers,
    transition,
)
from services.campaign_engine.campaigns.schemas import (
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    ListQuery,
    Pacing,
    Status,
)
from services.campaign_engine.models import PRODUCER, Campaign, Outbox
from shared.events import CampaignSnapshot, CampaignStatusChanged
from shared.ids import random_uuid
from shared.outbox import add_event

MAX_CAMPAIGN_NUMBER = (1 << 20) - 1  # the campaign number is 20 bits of a coupon code
_ID_SHAPE = re.compile(r"[\x21-\x7e]{1,64}")


class UnknownOffer(ValueError):
    """A PATCH names an offer_id the campaign does not have (field: offers.<i>.offer_id)."""

    def __init__(self, index: int) -> None:
        super().__init__(f"offers.{index}.offer_id")
        self.field = f"offers.{index}.offer_id"


class InvalidCursor(ValueError):
    """A list cursor that this API did not hand out."""


def _offset_minutes(moment: datetime) -> int:
    offset = moment.utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


def _new_id() -> str:
    return str(random_uuid())


def create_campaign(session: Session, body: CampaignIn) -> Campaign:
    """A new draft campaign."""
    data = body.model_dump(mode="python")
    campaign = Campaign(
        campaign_id=_new_id(),
        status="draft",
        revision=0,
        utc_offset_minutes=_offset_minutes(body.starts_at),
        **_columns(data),
        offers=[stored_offer(o, index=i, offer_id=_new_id()) for i, o in enumerate(data["offers"])],
    )
    session.add(campaign)
    session.flush()
    if campaign.number > MAX_CAMPAIGN_NUMBER:
        raise RuntimeError("campaign numbers are used up (20 bits)")
    return campaign


def _columns(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": data["name"],
        "starts_at": data["starts_at"],
        "ends_at": data["ends_at"],
        "budget": data["budget"],
        "caps": data["caps"],
        "holdout_pct": float(data["holdout_pct"]),
        "audience": data["audience"],
        "revenue_share": data["revenue_share"],
        "per_call_fee": data["per_call_fee"],
        "message_cost": data["message_cost"],
        "pacing": data["pacing"],
    }


def find_campaign(session: Session, campaign_id: str, *, lock: bool = False) -> Campaign | None:
    """The campaign with this id (locked for update when changing it)."""
    if not _ID_SHAPE.fullmatch(campaign_id):
        return None  # never a NUL or control character into the database
    query = select(Campaign).where(Campaign.campaign_id == campaign_id)
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def list_campaigns(session: Session, query: ListQuery) -> tuple[list[Campaign], str | None]:
    """One page of campaigns in creation order, and the cursor of the next page."""
    stmt = select(Campaign).order_by(Campaign.number).limit(query.limit + 1)
    if query.cursor:
        stmt = stmt.where(Campaign.number > decode_cursor(query.cursor))
    if query.status:
        stmt = stmt.where(Campaign.status == query.status)
    rows = list(session.execute(stmt).scalars())
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return rows, encode_cursor(rows[-1].number) if more and rows else None


def encode_cursor(number: int) -> str:
    return base64.urlsafe_b64encode(f"n:{number}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, number = raw.split(":", 1)
        value = int(number)
        if prefix != "n" or not 0 <= value < 2**62:
            raise ValueError(cursor)
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor(cursor) from exc


def campaign_spec(campaign: Campaign) -> dict[str, Any]:
    """The campaign's fields as the API models them (input to the change rules)."""
    return {
        "name": campaign.name,
        "starts_at": campaign.starts_at,
        "ends_at": campaign.ends_at,
        "offers": campaign.offers,
        "budget": campaign.budget,
        "caps": campaign.caps,
        "holdout_pct": campaign.holdout_pct,
        "audience": campaign.audience,
        "revenue_share": campaign.revenue_share,
        "per_call_fee": campaign.per_call_fee,
        "message_cost": campaign.message_cost,
        "pacing": campaign.pacing,
    }


def patched_body(campaign: Campaign, patch: CampaignPatch) -> dict[str, Any]:
    """The campaign's fields with the patch applied (budget and caps merge field by field)."""
    spec = campaign_spec(campaign)
    body = {k: v for k, v in spec.items() if k != "offers"}
    body["offers"] = [_offer_in(o) for o in live_offers(campaign)]
    changes = patch.model_dump(mode="python", exclude_unset=True)
    for name, value in changes.items():
        if name in ("budget", "caps") and value is not None:
            body[name] = {**body[name], **value}
        else:
            body[name] = value
    return body


def _offer_in(offer: dict[str, Any]) -> dict[str, Any]:
    return {
        k: offer[k]
        for k in ("offer_id", "title", "discount", "applies_to", "min_basket", "valid_hours")
    }


def apply_patch(
    session: Session, campaign: Campaign, body: CampaignIn, patch: CampaignPatch, now: datetime
) -> None:
    """Apply a validated, merged PATCH under the status rules; announce it if live."""
    data = body.model_dump(mode="python")
    current = campaign_spec(campaign)
    check_update(campaign.status, current, data)
    offers = campaign.offers
    if "offers" in patch.model_fields_set:
        try:
            offers = merge_offers(campaign.status, campaign.offers, data["offers"], _new_id)
        except KeyError as exc:
            raise UnknownOffer(int(exc.args[0])) from None
    for name, value in _columns(data).items():
        setattr(campaign, name, value)
    if "starts_at" in patch.model_fields_set:
        campaign.utc_offset_minutes = _offset_minutes(body.starts_at)
    campaign.offers = offers
    campaign.updated_at = now
    campaign.revision += 1
    if campaign.status in ("active", "paused"):
        announce(session, campaign)


def change_status(session: Session, campaign: Campaign, action: str, now: datetime) -> None:
    """Move the campaign through its lifecycle and announce the new status."""
    campaign.status = transition(campaign.status, action, ends_at=campaign.ends_at, now=now)
    campaign.updated_at = now
    campaign.revision += 1
    announce(session, campaign)


def announce(session: Session, campaign: Campaign) -> None:
    """campaign.activated / paused / ended with the full snapshot, through the outbox."""
    session.flush()
    add_event(
        session,
        Outbox,
        STATUS_EVENT[campaign.status],
        CampaignStatusChanged(campaign_id=campaign.campaign_id, campaign=snapshot(campaign)),
        key=campaign.campaign_id,
        producer=PRODUCER,
    )


def snapshot(campaign: Campaign) -> CampaignSnapshot:
    """What other services keep of a campaign."""
    return CampaignSnapshot(
        campaign_id=campaign.campaign_id,
        number=campaign.number,
        name=campaign.name,
        status=cast(Status, campaign.status),  # the column holds only what transition() gives
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        offers=[snapshot_offer(o) for o in campaign.offers],
        budget=dict(campaign.budget),
        caps=dict(campaign.caps),
        holdout_pct=campaign.holdout_pct,
        revenue_share=dict(campaign.revenue_share),
        per_call_fee=campaign.per_call_fee,
        message_cost=campaign.message_cost,
        pacing=cast(Pacing, campaign.pacing),  # the column holds only what the API accepts
    )


def to_out(campaign: Campaign) -> CampaignOut:
    """The API representation; times in the zone the marketer wrote starts_at in."""
    tz = timezone(timedelta(minutes=campaign.utc_offset_minutes))
    return CampaignOut.model_validate(
        {
            "campaign_id": campaign.campaign_id,
            "number": campaign.number,
            "status": campaign.status,
            **{
                k: v
                for k, v in campaign_spec(campaign).items()
                if k not in ("starts_at", "ends_at")
            },
            "starts_at": campaign.starts_at.astimezone(tz),
            "ends_at": campaign.ends_at.astimezone(tz),
            "created_at": campaign.created_at,
            "updated_at": campaign.updated_at,
        }
    )
