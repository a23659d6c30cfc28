"""A drop's running counts (docs/interfaces.md § Campaign drops: progress), kept in the
same transactions as what they count, so reading a drop's progress is one short query
however large its audience (joining 100,000 members with their decisions took ~145 ms of
PostgreSQL a read, and the console and the bench read it every few seconds):

- `decided`, `coupons`, `holdout`: by the decision path, for the decisions it stored of a
  drop's members (decisions/decide.py, for the runner's pages and the bus way alike);
- `pushed`, `failed`, `skipped`: by the delivery reports, from each member's state before
  and after (drops/deliveries.py), so a report applied again, or a member whose state
  changes, is counted right.

Followers asked are the drop's `members` column, kept by the runner with each page.
A module of its own (not drops/) because the decision path writes it and drops/ imports
the decision path. Rows are upserted in a fixed order, so two transactions adding to the
same drop cannot deadlock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.campaign_engine.models import DropTally

DECIDED, COUPONS, HOLDOUT = "decided", "coupons", "holdout"
DELIVERY_STATES = ("pushed", "failed", "skipped")
TALLIED = (DECIDED, COUPONS, HOLDOUT, *DELIVERY_STATES)


def add(session: Session, deltas: Mapping[tuple[str, str], int]) -> None:
    """Add each delta to its (drop id, state) count, in the caller's transaction."""
    rows = [
        {"drop_id": drop_id, "state": state, "n": n}
        for (drop_id, state), n in sorted(deltas.items())
        if n
    ]
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    insert = dialect.insert(DropTally).values(rows)
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[DropTally.drop_id, DropTally.state],
            set_={"n": DropTally.n + insert.excluded.n},
        )
    )


def read(session: Session, drop_id: str) -> dict[str, int]:
    """Each tallied state's count for the drop (0 for one never counted)."""
    rows = session.execute(select(DropTally.state, DropTally.n).where(DropTally.drop_id == drop_id))
    found = {state: n for state, n in rows}
    return {state: int(found.get(state, 0)) for state in TALLIED}


def decision_deltas(decided: list[tuple[str, str, bool]]) -> Counter[tuple[str, str]]:
    """The counts a batch of stored drop decisions adds: (drop id, arm, has a coupon) each."""
    deltas: Counter[tuple[str, str]] = Counter()
    for drop_id, arm, coupon in decided:
        deltas[(drop_id, DECIDED)] += 1
        if coupon:
            deltas[(drop_id, COUPONS)] += 1
        if arm == "holdout":
            deltas[(drop_id, HOLDOUT)] += 1
    return deltas
