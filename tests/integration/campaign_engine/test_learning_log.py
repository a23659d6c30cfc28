"""The learning loop's data on real PostgreSQL and Redis: decisions logged by the engine, sales
kept by its handler, the join, and `tenin model train --from-logs` registering a candidate."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from services.campaign_engine.bootstrap import Engine
from services.campaign_engine.handlers import handlers
from services.campaign_engine.modeling import registry
from services.campaign_engine.modeling.cli import train_main
from services.campaign_engine.modeling.outcomes import logged_outcomes
from services.campaign_engine.modeling.simulated_log import simulated_log, write_log
from services.campaign_engine.models import CustomerSale
from shared.db import make_session_factory, utcnow
from shared.events import make_event
from shared.model.features import FEATURE_NAMES
from tests.unit.campaign_engine.fakes import active_campaign, offer_request

MONETARY = FEATURE_NAMES.index("monetary_avg")


def test_a_sale_between_two_decisions_is_spend_of_the_first_and_a_feature_of_the_second(
    engine: Engine, sessions: Callable[[], Session], fresh_db: str
) -> None:
    now = utcnow()
    customer = f"c_pit_{uuid.uuid4().hex[:12]}"  # Redis outlives the test database
    active_campaign(sessions, now - timedelta(hours=1))
    first = engine.decide(offer_request(customer))
    assert first is not None
    sale = make_event(
        "sale.recorded",
        {
            "customer_id": customer,
            "transaction_id": "tx-pit-1",
            "store_id": "s1",
            "total": 1800,
            "categories": ["bento"],
            "occurred_at": (first.decided_at + timedelta(milliseconds=5)).isoformat(),
        },
        key=customer,
        producer="redemption_tracker",
    )
    handle = handlers(engine)["sale.recorded"]
    handle(sale)
    handle(sale)  # redelivered: kept once
    time.sleep(0.02)  # the second decision comes after the sale
    second = engine.decide(offer_request(customer))
    assert second is not None

    db = create_engine(fresh_db)
    try:
        with db.connect() as conn:
            logged = logged_outcomes(
                conn,
                since=now - timedelta(hours=1),
                until=now + timedelta(hours=1),
                now=now + timedelta(days=30),
                schema="campaign_engine",
            )
            kept = conn.execute(select(func.count()).select_from(CustomerSale)).scalar_one()
    finally:
        db.dispose()
    rows = {d: i for i, d in enumerate(logged.decision_id)}
    one, two = rows[first.decision_id], rows[second.decision_id]
    # Point in time: the first decision's row has the features it was decided on.
    assert logged.X[one, MONETARY] == 0.0 and logged.X[two, MONETARY] > 0.0
    # The sale came after the first decision (its spend) and before the second (not its spend).
    assert (logged.spend_after[one], logged.spend_after[two]) == (1800.0, 0.0)
    assert kept == 1 and list(logged.reason) == ["exploit", "exploit"]


def test_train_from_logs_on_postgres_registers_a_candidate(
    fresh_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = utcnow() - timedelta(days=40)
    db = create_engine(fresh_db)
    try:
        with db.begin() as conn:
            write_log(conn, simulated_log(2000, seed=9, start=start))
        code = train_main(
            [
                "--from-logs",
                "--database-url",
                fresh_db,
                "--since",
                start.isoformat(),
                "--until",
                (start + timedelta(days=14)).isoformat(),
                "--model-dir",
                str(tmp_path),
            ]
        )
        assert code == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        with make_session_factory(db)() as session:
            [row] = registry.versions(session, "propensity")
    finally:
        db.dispose()
    assert (row.version, row.status) == (summary["version"], "candidate")
    assert row.card["rows"] == summary["rows"] > 0 and row.metrics == summary["metrics"]
    assert (tmp_path / row.version / "model.onnx").is_file()
