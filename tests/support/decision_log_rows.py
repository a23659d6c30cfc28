"""Campaigns, issued coupons, drops and their members written straight to the engine's tables,
and what an archive holds, for the decision log's retention tests (modeling/retention.py,
`tenin model prune-logs`)."""

from __future__ import annotations

import csv
import gzip
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from services.campaign_engine.campaigns.commands import create_campaign
from services.campaign_engine.campaigns.schemas import CampaignIn
from services.campaign_engine.models import Coupon, Decision, Drop, DropMember
from shared.db import utcnow
from tests.unit.campaign_engine.fakes import campaign_body

_COUPON_FIELDS = ("coupon_code", "decision_id", "offer_id", "customer_id", "decided_at")


def add_campaign(session: Session, status: str) -> str:
    """A valid campaign (as the campaign API creates one) in `status`; its id. Valid, because
    the database is shared with tests that list every campaign through the API."""
    campaign = create_campaign(session, CampaignIn.model_validate(campaign_body(utcnow())))
    campaign.status = status
    session.flush()
    return campaign.campaign_id


def add_coupons(
    session: Session, decisions: Iterable[Decision | Mapping[str, Any]], campaign_id: str
) -> set[str]:
    """A coupons row for each decision (a row or its columns) that sent one, as the decision
    path writes it; their codes."""
    codes = set()
    for serial, decision in enumerate(decisions, start=1):
        d = decision if isinstance(decision, Mapping) else _columns(decision)
        if d["coupon_code"] is None or d["expires_at"] is None:
            continue
        session.add(
            Coupon(
                code=d["coupon_code"],
                decision_id=d["decision_id"],
                campaign_id=campaign_id,
                offer_id=d["offer_id"] or "offer-0",
                customer_id=d["customer_id"],
                serial=serial,
                face_value=100,
                issued_at=d["decided_at"],
                expires_at=d["expires_at"],
            )
        )
        codes.add(d["coupon_code"])
    return codes


def add_drop(session: Session, campaign_id: str, status: str, created_at: datetime) -> str:
    """A drop of the campaign in `status`, created at `created_at`; its id."""
    drop_id = str(uuid.uuid4())
    session.add(
        Drop(drop_id=drop_id, campaign_id=campaign_id, status=status, created_at=created_at)
    )
    return drop_id


def add_members(session: Session, drop_id: str, members: Iterable[tuple[str, str]]) -> set[str]:
    """A drop_members row for each (customer id, request id) the drop asked; the request ids."""
    request_ids = set()
    for customer_id, request_id in members:
        session.add(DropMember(drop_id=drop_id, customer_id=customer_id, request_id=request_id))
        request_ids.add(request_id)
    return request_ids


def never_decided(n: int) -> list[tuple[str, str]]:
    """`n` (customer id, request id) pairs whose request has no decision (random ids)."""
    return [(f"cust-{uuid.uuid4().hex[:12]}", f"req-{uuid.uuid4()}") for _ in range(n)]


def _columns(decision: Decision) -> dict[str, Any]:
    return {k: getattr(decision, k) for k in (*_COUPON_FIELDS, "expires_at")}


def archived(directory: Path, table: str, key: str) -> set[str]:
    """The `key` column of every row of `table` that prune-logs archived in `directory`."""
    found: set[str] = set()
    for path in sorted(directory.glob(f"{table}-before-*.csv.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            found |= {r[key] for r in csv.DictReader(handle)}
    return found
