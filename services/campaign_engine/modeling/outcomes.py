"""The one join every model and estimate stands on: logged decisions with their outcomes.

`logged_outcomes` reads the decision log (docs/architecture.md § Measurement, "Decision log") and joins:

- **redeemed**: the decision's coupon has an unvoided redemption (redemptions_seen, from
  coupon.events) between the decision and the coupon's expiry. A voided redemption or one
  after expiry does not count;
- **spend_after**: what the customer spent (customer_sales, from sale.recorded) strictly
  after the decision and up to `spend_window` later, for the treated and the holdout alike;
- **discount**: yen the counted redemptions took off (redemptions_seen.discount);
- **message_cost**: for a drop's decision (its request id in drop_members), the yen its
  campaign's push costs (`message_cost`, as it is now; a change since is not seen), else 0.

Features are the logged matrix, exactly as the policy scored it at decision time; nothing
is recomputed from today's aggregates, so nothing after the decision can leak into a row.
Only decisions that got as far as scoring candidates are rows (opted-out customers or no
active campaign carry no features).

**When an outcome is final** (docs/learning.md § Rewards): a decision is left out until
`now` is past its decision time plus the *outcome horizon*, the longer of the spend window and
the longest coupon validity among the decisions read: the same for every decision, whatever
it did. Waiting for each sent coupon's expiry but keeping a decision that sent nothing once
its spend window closed chose the judged decisions by their action and biased every estimate
on them (issue 13: the live run's last judged week was 79% holdout, with no exploited coupon).

**Propensity**: the logged probability of the policy's pick. Rows refused after the pick
(cap, budget, issuance limit) carry 1.0 in the `propensity` column; each candidate's
probability is also logged (`candidates[].p`) and is used whenever it is there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from sqlalchemy import bindparam, text

from services.campaign_engine.modeling.spend import spend_in_windows
from shared.db import UTCDateTime
from shared.model.features import N_FEATURES

__all__ = ["LoggedDecisions", "logged_outcomes", "spend_in_windows"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Typed binds: SQLite stores timestamps as text, and compares them as text.
_SINCE = bindparam("since", type_=UTCDateTime())
_UNTIL = bindparam("until", type_=UTCDateTime())
PAGE = timedelta(days=1)


@dataclass(frozen=True)
class LoggedDecisions:
    """Decisions with closed outcome windows, one entry per decision (arrays of length n).

    `X` is the row of the action that was taken or held back (`intended`); for a decision
    where the policy chose no coupon, the candidate with the highest expected value (what the
    policy would have sent). Every candidate's row is in `candidates_X`, decision i's being
    rows offsets[i]:offsets[i+1], with their logged scores and expected values.
    """

    decision_id: np.ndarray  # object (str)
    customer_id: np.ndarray  # object (str)
    X: np.ndarray  # float32 (n, N_FEATURES)
    action: np.ndarray  # int64: candidate index of the coupon sent, -1 for none
    intended: np.ndarray  # int64: candidate the policy picked (also for holdout / cap), -1 none
    offer_id: np.ndarray  # object (str | None): the offer sent
    propensity: np.ndarray  # float64: logged probability of the policy's pick
    arm: np.ndarray  # object: treatment | explore | holdout | none
    reason: np.ndarray  # object: NO_COUPON_REASONS entry, exploit or explore
    redeemed: np.ndarray  # int8
    spend_after: np.ndarray  # float64 yen
    discount: np.ndarray  # float64 yen taken off by counted redemptions
    decided_at: np.ndarray  # datetime64[ms] (UTC)
    model_version: np.ndarray  # object (str)
    candidates_X: np.ndarray  # float32 (m, N_FEATURES)
    offsets: np.ndarray  # int64 (n + 1,)
    candidate_scores: np.ndarray  # float64 (m,): P(redeem) the logging model gave; nan unknown
    candidate_values: np.ndarray  # float64 (m,): expected value (yen) the policy computed
    candidate_campaigns: np.ndarray  # object (m,): each candidate's campaign id (None unknown)
    # float64 (n,): yen a coupon sent would cost as a push (a drop's decision: its campaign's
    # message_cost), 0 for a chat reply; None when not read.
    message_cost: np.ndarray | None = None
    skipped: int = 0  # rows whose features do not fit this build's N_FEATURES
    horizon: timedelta = timedelta(0)  # the outcome horizon the rows were closed by

    def __len__(self) -> int:
        return len(self.decision_id)

    def select(self, keep: np.ndarray) -> LoggedDecisions:
        """The decisions where `keep` (bool, one per decision) is true, with their candidates."""
        sizes = np.diff(self.offsets)
        rows = np.repeat(keep, sizes)
        fields: dict[str, Any] = {
            name: None if (v := getattr(self, name)) is None else v[keep] for name in _PER_DECISION
        }
        fields |= {name: getattr(self, name)[rows] for name in _PER_CANDIDATE}
        offsets = np.concatenate([[0], np.cumsum(sizes[keep])]).astype(np.int64)
        return LoggedDecisions(
            **fields, offsets=offsets, skipped=self.skipped, horizon=self.horizon
        )

    @property
    def treated(self) -> np.ndarray:
        """A coupon went out (treatment or explore arm)."""
        return self.action >= 0


def _table(name: str, schema: str | None) -> str:
    return f"{schema}.{name}" if schema else name


def _as_datetime(value: Any) -> datetime:
    """Postgres gives datetimes, SQLite ISO text; naive ones are UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _ms(at: datetime) -> int:
    return int((at - _EPOCH) / timedelta(milliseconds=1))


def _decision_rows(
    conn: Any, since: datetime, until: datetime, schema: str | None
) -> Iterator[Any]:
    sql = text(f"""
        SELECT d.decision_id, d.customer_id, d.arm, d.reason, d.propensity, d.model_version,
               d.features, CAST(d.candidates AS TEXT) AS candidates, d.offer_id, d.coupon_code, d.decided_at, d.expires_at,
               r.redeemed_at, r.discount, COALESCE(c.message_cost, 0) AS message_cost
        FROM {_table("decisions", schema)} d
        LEFT JOIN {_table("drop_members", schema)} dm ON dm.request_id = d.request_id
        LEFT JOIN {_table("drops", schema)} dr ON dr.drop_id = dm.drop_id
        LEFT JOIN {_table("campaigns", schema)} c ON c.campaign_id = dr.campaign_id
        LEFT JOIN (
            SELECT coupon_code, MIN(redeemed_at) AS redeemed_at, SUM(discount) AS discount
            FROM {_table("redemptions_seen", schema)}
            WHERE NOT voided
            GROUP BY coupon_code
        ) r ON r.coupon_code = d.coupon_code
        WHERE d.decided_at >= :since AND d.decided_at < :until AND d.features IS NOT NULL
        ORDER BY d.decided_at, d.decision_id
    """).bindparams(_SINCE, _UNTIL)
    # One query per PAGE of decision time: a million rows never sit in the driver at once, and
    # plain queries read several times faster than a server-side cursor does.
    start = since
    while start < until:
        end = min(until, start + PAGE)
        yield from conn.execute(sql, {"since": start, "until": end})
        start = end


def _sales(
    conn: Any, since: datetime, until: datetime, schema: str | None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    sql = text(f"""
        SELECT customer_id, occurred_at, amount FROM {_table("customer_sales", schema)}
        WHERE occurred_at > :since AND occurred_at <= :until
    """).bindparams(_SINCE, _UNTIL)
    ids, at, amount = [], [], []
    for row in conn.execute(sql, {"since": since, "until": until}):
        ids.append(row[0])
        at.append(_ms(_as_datetime(row[1])))
        amount.append(float(row[2]))
    return ids, np.array(at, dtype=np.int64), np.array(amount, dtype=np.float64)


def _best(values: list[float]) -> int:
    """The candidate with the highest logged expected value (the first when none is known)."""
    known = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf)
    return int(np.argmax(known))


def logged_outcomes(
    conn: Any,
    *,
    since: datetime,
    until: datetime,
    spend_window: timedelta = timedelta(days=7),
    schema: str | None = None,
    now: datetime | None = None,
) -> LoggedDecisions:
    """Decisions made in [since, until) whose outcome window closed by `now`, with outcomes.

    `conn` is a SQLAlchemy Session or Connection on the engine's database; `schema` names the
    schema that holds the tables when the connection's search path does not (Postgres).
    """
    now = now or datetime.now(UTC)
    window_ms = _ms(_EPOCH + spend_window)
    acc: dict[str, list[Any]] = {k: [] for k in _COLUMNS}
    cand_x: list[np.ndarray] = []
    cand_scores: list[float] = []
    cand_values: list[float] = []
    cand_campaigns: list[str | None] = []
    offsets, skipped, validity = [0], 0, timedelta(0)
    for row in _decision_rows(conn, since, until, schema):
        decided = _as_datetime(row.decided_at)
        expires = _as_datetime(row.expires_at) if row.expires_at is not None else decided
        validity = max(validity, expires - decided)
        if decided + spend_window > now:
            continue  # not final for anyone yet (the horizon below may leave out more)
        logged = orjson.loads(row.features)
        matrix = np.asarray(logged.get("candidates") or [], dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != N_FEATURES or not len(matrix):
            skipped += 1  # an older feature layout, or damaged
            continue
        cands = orjson.loads(row.candidates) if row.candidates is not None else None
        chosen = logged.get("chosen")
        intended = -1 if chosen is None else int(chosen)
        propensity = float(row.propensity)
        if cands and len(cands) == len(matrix):
            scores = [float(c.get("score", np.nan)) for c in cands]
            values = [float(c.get("ev", np.nan)) for c in cands]
            campaigns = [c.get("campaign_id") for c in cands]
            propensity = _pick_probability(cands, intended, propensity)
        else:
            scores, values = [np.nan] * len(matrix), [np.nan] * len(matrix)
            campaigns = [None] * len(matrix)
        shown = intended if intended >= 0 else _best(values)
        redeemed_at = row.redeemed_at
        redeemed = (
            redeemed_at is not None
            and row.coupon_code is not None
            and decided <= _as_datetime(redeemed_at) <= expires
        )
        for key, value in (
            ("decision_id", row.decision_id),
            ("customer_id", row.customer_id),
            ("X", matrix[shown]),
            ("action", intended if row.coupon_code is not None else -1),
            ("intended", intended),
            ("offer_id", row.offer_id),
            ("propensity", propensity),
            ("arm", row.arm),
            ("reason", row.reason),
            ("redeemed", redeemed),
            ("discount", float(row.discount or 0) if redeemed else 0.0),
            ("decided_ms", _ms(decided)),
            ("model_version", row.model_version),
            ("message_cost", float(row.message_cost or 0)),
        ):
            acc[key].append(value)
        cand_x.append(matrix)
        cand_scores.extend(scores)
        cand_values.extend(values)
        cand_campaigns.extend(campaigns)
        offsets.append(offsets[-1] + len(matrix))
    decided_ms = np.array(acc["decided_ms"], dtype=np.int64)
    ids, sale_ms, amount = _sales(conn, since, until + spend_window, schema)
    spend = spend_in_windows(ids, sale_ms, amount, acc["customer_id"], decided_ms, window_ms)
    every = LoggedDecisions(
        decision_id=np.array(acc["decision_id"], dtype=object),
        customer_id=np.array(acc["customer_id"], dtype=object),
        X=np.stack(acc["X"]) if acc["X"] else np.zeros((0, N_FEATURES), dtype=np.float32),
        action=np.array(acc["action"], dtype=np.int64),
        intended=np.array(acc["intended"], dtype=np.int64),
        offer_id=np.array(acc["offer_id"], dtype=object),
        propensity=np.array(acc["propensity"], dtype=np.float64),
        arm=np.array(acc["arm"], dtype=object),
        reason=np.array(acc["reason"], dtype=object),
        redeemed=np.array(acc["redeemed"], dtype=np.int8),
        spend_after=spend,
        discount=np.array(acc["discount"], dtype=np.float64),
        decided_at=decided_ms.astype("datetime64[ms]"),
        model_version=np.array(acc["model_version"], dtype=object),
        candidates_X=(
            np.concatenate(cand_x) if cand_x else np.zeros((0, N_FEATURES), dtype=np.float32)
        ),
        offsets=np.array(offsets, dtype=np.int64),
        candidate_scores=np.array(cand_scores, dtype=np.float64),
        candidate_values=np.array(cand_values, dtype=np.float64),
        candidate_campaigns=np.array(cand_campaigns, dtype=object),
        message_cost=np.array(acc["message_cost"], dtype=np.float64),
        skipped=skipped,
        horizon=max(spend_window, validity),
    )
    # One horizon for every decision, whatever its action (the module's docstring says why).
    return every.select(decided_ms + _ms(_EPOCH + every.horizon) <= _ms(now))


def _pick_probability(cands: list[dict[str, Any]], intended: int, logged: float) -> float:
    """The logged probability of the policy's pick (the last action: no coupon)."""
    raw = [c.get("p") for c in cands]
    if any(p is None for p in raw):
        return logged
    probs = [float(p) for p in raw if p is not None]
    if intended >= 0:
        return probs[intended]
    return max(0.0, 1.0 - sum(probs))


_PER_CANDIDATE = ("candidates_X", "candidate_scores", "candidate_values", "candidate_campaigns")
_COLUMNS = (
    "decision_id",
    "customer_id",
    "X",
    "action",
    "intended",
    "offer_id",
    "propensity",
    "arm",
    "reason",
    "redeemed",
    "discount",
    "decided_ms",
    "model_version",
    "message_cost",
)
# LoggedDecisions' fields of one entry per decision: the accumulated ones, the joined spend, time.
_PER_DECISION = (*(c for c in _COLUMNS if c != "decided_ms"), "spend_after", "decided_at")
