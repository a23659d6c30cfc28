"""Migration 0008: campaigns that ran before pacing existed keep today's behaviour (asap);
campaigns created afterwards are evenly paced unless they say otherwise."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, text

from shared.db import make_engine
from tests.support.databases import create_database, drop_database, migrate

INSERT = text(
    "INSERT INTO campaign_engine.campaigns (campaign_id, name, status, starts_at, ends_at,"
    " utc_offset_minutes, offers, budget, caps, holdout_pct, revenue_share, per_call_fee,"
    " revision, created_at, updated_at) VALUES (:id, 'c', 'active', :t, :t, 0, :j, :j, :j,"
    " 10, :j, 0, 0, :t, :t)"
)
SELECT = text("SELECT campaign_id, pacing, message_cost FROM campaign_engine.campaigns")


def _check(url: str) -> None:
    migrate(url, "0007")
    # SQLite needs the service schemas attached, which shared.db's engine does.
    engine = make_engine(url) if url.startswith("sqlite") else create_engine(url)
    try:
        row = {"t": "2026-11-01 00:00:00+00:00", "j": json.dumps({})}
        with engine.begin() as conn:
            conn.execute(INSERT, {"id": "before", **row})
        migrate(url, "0008")
        with engine.begin() as conn:
            conn.execute(INSERT, {"id": "after", **row})
            found = {r.campaign_id: (r.pacing, r.message_cost) for r in conn.execute(SELECT)}
    finally:
        engine.dispose()
    assert found == {"before": ("asap", 0), "after": ("even", 0)}


def test_existing_campaigns_stay_asap_on_postgres(real_services: dict[str, str]) -> None:
    server = real_services["DATABASE_URL"]
    url = create_database(server, prefix="tenin_pacing_mig")
    try:
        _check(url)
    finally:
        drop_database(server, url)


def test_existing_campaigns_stay_asap_on_sqlite(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'tenin.db'}")
