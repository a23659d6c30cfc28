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

import numpy as np
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


def spend_in_windows(
    sale_customers: list[str],
    sale_ms: np.ndarray,
    sale_amount: np.ndarray,
    customers: list[str],
    start_ms: np.ndarray,
    window_ms: int,
) -> np.ndarray:
    """For each (customer, start): total of that customer's sales in (start, start + window].

    One sort and two binary searches over (customer, time) keys: O((s + n) log s).
    """
    codes: dict[str, int] = {}
    s_code = np.array([codes.setdefault(c, len(codes)) for c in sale_customers], dtype=np.int64)
    d_code = np.array([codes.get(c, -1) for c in customers], dtype=np.int64)
    if not len(s_code):
        return np.zeros(len(customers))
    base = int(min(sale_ms.min(), start_ms.min() if len(start_ms) else sale_ms.min())) - 1
    span = int(max(sale_ms.max(), (start_ms.max() if len(start_ms) else 0) + window_ms)) - base + 1
    if span * (len(codes) + 1) >= 2**62:
        raise OverflowError("too many customers over too long a span for one join; split it")
    s_key = s_code * span + (sale_ms - base)
    order = np.argsort(s_key, kind="stable")
    s_key = s_key[order]
    cum = np.concatenate([[0.0], np.cumsum(sale_amount[order])])
    lo_key = d_code * span + (start_ms - base)
    lo = np.searchsorted(s_key, lo_key, side="right")
    hi = np.searchsorted(s_key, lo_key + window_ms, side="right")
    spend = cum[hi] - cum[lo]
    spend[d_code < 0] = 0.0
    return spend
