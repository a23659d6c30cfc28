"""Training from the retailer's own logs (docs/architecture.md § Measurement, "Decision log"): the propensity
model and the uplift pair, from logged decisions joined with their outcomes.

- **propensity**: rows are the decisions that sent a coupon; label = redeemed within its
  validity (modeling/outcomes.py). Each row is weighted by 1 / logged propensity, clipped at
  MAX_IPW and scaled to mean 1, so offers the logging policy favoured do not dominate: where
  the policy explored (propensity < 1), the weighted rows stand for every candidate it could
  have sent. A greedy log (all propensities 1) gives equal weights: the card says so.
- **uplift** (T-learner, modeling/uplift.py): treatment = a coupon went out; control = the
  holdout and the policy's own "no coupon" (reason policy_chose_none); outcome = spend in the
  window after the decision. Decisions refused by caps or budgets are neither: who reaches a
  cap is not like the others.

Both export to ONNX with the parity check, write a versioned artifact with its card, and
register it as a candidate (never serving: promotion is the gate's, modeling/registry.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy.orm import Session

from services.campaign_engine.modeling import artifacts, registry
from services.campaign_engine.modeling.card import (
    bootstrap_auc,
    data_window,
    git_sha,
    mean_difference,
)
from services.campaign_engine.modeling.dataset import UpliftRows
from services.campaign_engine.modeling.outcomes import LoggedDecisions, logged_outcomes
from services.campaign_engine.modeling.train import (
    TrainParams,
    calibration_table,
    fit_lightgbm,
    holdout_split,
)
from services.campaign_engine.modeling.uplift import UPLIFT_PARAMS, fit_pair
from shared.model.features import FEATURE_NAMES, N_FEATURES

Kind = Literal["propensity", "uplift"]
MAX_IPW = 20.0  # clip 1/propensity here: one lucky explored row must not outweigh twenty
MIN_ROWS = 50
CONTROL_REASONS = ("holdout", "policy_chose_none")
# Off: measured worse on the simulator (docs/learning.md § Weeks demo, "Policy-corrected uplift").
UPLIFT_IPW = False


@dataclass(frozen=True)
class TrainedVersion:
    """A version trained from logs, written to `path` and registered as a candidate."""

    kind: Kind
    version: str
    path: Path
    card: dict[str, Any]


def ipw_weights(propensity: np.ndarray, clip: float = MAX_IPW) -> np.ndarray:
    """1 / propensity, clipped at `clip`, scaled to mean 1 (all ones when nothing explored)."""
    p = np.asarray(propensity, dtype=np.float64)
    w = np.minimum(1.0 / np.clip(p, 1.0 / clip, 1.0), clip)
    return w / w.mean() if len(w) else w


def _session(conn: Any, schema: str | None) -> Session:
    """A session on the caller's connection; tables in `schema` when it is not the engine's.

    With another schema the caller's connection keeps the schema translation for the rest of
    its life (SQLAlchemy sets execution options on the connection itself).
    """
    if isinstance(conn, Session):
        if schema and schema != "campaign_engine":
            conn = conn.connection()
        else:
            return conn
    bind = conn
    if schema and schema != "campaign_engine":
        bind = conn.execution_options(schema_translate_map={"campaign_engine": schema})
    return Session(bind=bind, join_transaction_mode="create_savepoint")


def train_from_logs(
    conn: Any,
    *,
    kind: Kind,
    since: datetime,
    until: datetime,
    model_dir: Path | str,
    seed: int = 7,
    schema: str | None = None,
    progress: Callable[[str], None] | None = None,
    spend_window: timedelta = timedelta(days=7),
    now: datetime | None = None,
    params: TrainParams | None = None,
) -> TrainedVersion:
    """Join, fit, export, write and register one version; ValueError when the data cannot fit it.

    `conn` is a Session or Connection; the registry row is written on it and committed by the
    caller (a Connection from `engine.begin()` commits when its block ends).
    """
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    say(f"joining decisions {since.isoformat()} .. {until.isoformat()} with their outcomes")
    logged = logged_outcomes(
        conn, since=since, until=until, spend_window=spend_window, schema=schema, now=now
    )
    timings = {"load_join_s": round(time.perf_counter() - t0, 2)}
    say(f"{len(logged)} decisions with closed outcome windows ({logged.skipped} skipped)")
    params = params or (UPLIFT_PARAMS if kind == "uplift" else TrainParams())
    run = _Run(params, seed, say, timings)
    if kind == "propensity":
        prefix, files, body = _propensity(logged, run)
    elif kind == "uplift":
        prefix, files, body = _uplift(logged, run)
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    version = artifacts.new_version(prefix, b"".join(files.values()))
    session = _session(conn, schema)
    card: dict[str, Any] = {
        "version": version,
        "kind": kind,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": "decision-log",
        "data_window": data_window(since, until, spend_window / timedelta(days=1)),
        "feature_names": list(FEATURE_NAMES),
        "input": {"name": "input", "dtype": "float32", "shape": [None, N_FEATURES]},
        "files": {name.removesuffix(".onnx"): name for name in files},
        "params": asdict(params),
        "seed": seed,
        "git_sha": git_sha(),
        "parent_version": registry.serving(session, kind),
        "logging_model_versions": sorted({str(v) for v in logged.model_version}),
        "parity_tolerance": artifacts.PARITY_TOLERANCE,
        **body,
        "timings": timings,
    }
    say(f"writing {version} and registering it as a candidate")
    path = artifacts.write_version(model_dir, version, files, card, set_current=False)
    registry.register(session, kind, version, card)
    if session is not conn:
        session.commit()  # the savepoint: the caller's transaction still decides
    return TrainedVersion(kind, version, path, card)


@dataclass(frozen=True)
class _Run:
    """What one fit needs besides the rows: its settings, and where it reports."""

    params: TrainParams
    seed: int
    say: Callable[[str], None]
    timings: dict[str, float]


def _propensity(logged: LoggedDecisions, run: _Run) -> tuple[str, dict[str, bytes], dict[str, Any]]:
    sent = logged.treated
    X, y, prop = logged.X[sent], logged.redeemed[sent], logged.propensity[sent]
    if len(y) < MIN_ROWS or len(np.unique(y)) < 2:
        raise ValueError(
            f"need at least {MIN_ROWS} coupons sent with both outcomes, have {len(y)} "
            f"({int(y.sum())} redeemed)"
        )
    weights = ipw_weights(prop)
    train_idx, test_idx = holdout_split(len(y), run.seed)
    run.say(f"fitting the propensity model on {len(train_idx)} rows ({len(test_idx)} held out)")
    t = time.perf_counter()
    model = fit_lightgbm(X[train_idx], y[train_idx], run.params, run.seed, weights[train_idx])
    run.timings["fit_s"] = round(time.perf_counter() - t, 2)
    run.say("exporting to ONNX and checking parity")
    t = time.perf_counter()
    export = artifacts.checked_export(model, X[test_idx])
    run.timings["export_s"] = round(time.perf_counter() - t, 2)
    p_test, y_test = export.predictions, y[test_idx]
    explored = bool((prop < 1.0).any())
    body = {
        "target": "P(coupon redeemed within its validity window)",
        "output": {"name": "probabilities", "column": 1},
        "algorithm": "lightgbm.LGBMClassifier, inverse-propensity weighted",
        "rows": int(len(y)),
        "training_rows": int(len(train_idx)),
        "heldout_rows": int(len(test_idx)),
        "class_balance": {"redeemed": int(y.sum()), "not_redeemed": int(len(y) - y.sum())},
        "weights": {
            "scheme": "1/propensity clipped, mean 1" if explored else "none: nothing explored",
            "clip": MAX_IPW,
            "max": round(float(weights.max()), 3),
            "clipped_rows": int((1.0 / np.maximum(prop, 1e-12) > MAX_IPW).sum()),
        },
        "metrics": {
            "auc": bootstrap_auc(y_test, p_test, run.seed),
            "base_rate": round(float(y.mean()), 5),
            "mean_predicted": round(float(p_test.mean()), 5),
        },
        "calibration": calibration_table(p_test, y_test),
        "max_parity_gap": export.gap,
        "onnx_bytes": len(export.onnx),
    }
    return "prop", {"model.onnx": export.onnx}, body


def uplift_rows(logged: LoggedDecisions, weighted: bool | None = None) -> UpliftRows:
    """Treated: a coupon went out; control: holdout and the policy's no-coupon; others left out.

    Weighted (UPLIFT_IPW): each row by 1 / the logged probability of its action (clipped,
    mean 1 within treated and within control), as the propensity fit is: the offers and the
    no-coupon picks the policy favoured do not dominate each spend model.
    """
    control = np.isin(logged.reason.astype(str), CONTROL_REASONS) & ~logged.treated
    keep = logged.treated | control
    treated = logged.treated[keep]
    weights = None
    if UPLIFT_IPW if weighted is None else weighted:
        weights = np.ones(int(keep.sum()))
        propensity = logged.propensity[keep]
        for group in (treated, ~treated):
            if group.any():
                weights[group] = ipw_weights(propensity[group])
    return UpliftRows(
        X=logged.X[keep],
        treated=treated,
        spend=logged.spend_after[keep],
        redeemed=logged.redeemed[keep],
        weights=weights,
    )


def _uplift(logged: LoggedDecisions, run: _Run) -> tuple[str, dict[str, bytes], dict[str, Any]]:
    rows = uplift_rows(logged)
    n_treated = int(rows.treated.sum())
    run.say(
        f"fitting the uplift pair on {n_treated} treated and {len(rows.X) - n_treated} control rows"
    )
    t = time.perf_counter()
    files, metrics, gap = fit_pair(rows, run.params, run.seed)  # fit and export are one step here
    run.timings["fit_export_s"] = round(time.perf_counter() - t, 2)
    body = {
        "target": "yen spent in the window after the decision, treated vs control",
        "outcome": "spend_yen",
        "algorithm": "T-learner of two lightgbm.LGBMRegressor"
        + (", inverse-propensity weighted" if rows.weights is not None else ""),
        "rows": int(len(rows.X)),
        "training_rows": metrics["treated_rows"] + metrics["control_rows"],
        "class_balance": {"treated": n_treated, "control": int(len(rows.X) - n_treated)},
        "metrics": {
            **metrics,
            # Naive: treated and no-coupon controls were not randomised against each other.
            "observed_spend_difference": mean_difference(
                rows.spend[rows.treated], rows.spend[~rows.treated]
            ),
        },
        "max_parity_gap": gap,
    }
    return "upl", files, body
