"""Keeping what linked customers spend, with time: the spend outcome of every decision.

`sale.recorded` (sales.events) carries a linked customer's basket total. The engine's
features only keep running aggregates; the learning loop needs each sale with its time, so
that spend in a window after a decision can be summed for the treated and the holdout alike
(modeling/outcomes.py, docs/architecture.md § Measurement, "Decision log"). One row per transaction:
a redelivered event inserts nothing (ON CONFLICT DO NOTHING on the transaction id).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.campaign_engine.models import CustomerSale
from shared.db import unit_of_work
from shared.events import Envelope, SaleRecorded, payload_as

SALES_TABLE = cast(Table, CustomerSale.__table__)


def keep_sale(envelope: Envelope, *, sessions: Callable[[], Session]) -> None:
    """Store one sale (customer, total, time) once, whatever the redeliveries."""
    sale = payload_as(envelope, SaleRecorded)
    with unit_of_work(sessions) as session:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = dialect.insert(SALES_TABLE).on_conflict_do_nothing(
            index_elements=["transaction_id"]
        )
        session.execute(
            statement,
            {
                "transaction_id": sale.transaction_id,
                "customer_id": sale.customer_id,
                "amount": sale.total,
                "occurred_at": sale.occurred_at,
            },
        )
