"""`tenin model train`: fit LightGBM, export to ONNX, check parity, write a versioned artifact + card."""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.metrics import roc_auc_score

from services.campaign_engine.modeling.artifacts import (
    PARITY_TOLERANCE,
    ParityError,
    new_version,
    onnx_predict,
    parity_gap,
    to_onnx,
    write_version,
)
from shared.config import DEFAULT_MODEL_DIR
from shared.model.features import FEATURE_NAMES, N_FEATURES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainParams:
    """LightGBM settings; small trees keep the ONNX file a few hundred KB and scoring fast."""

    n_estimators: int = 200
    num_leaves: int = 15
    # Shallow, balanced trees: onnxruntime walks every tree for every row, so depth is latency.
    max_depth: int = 4
    learning_rate: float = 0.05
    min_child_samples: int = 100
    subsample: float = 0.8
    colsample_bytree: float = 0.9
    reg_lambda: float = 1.0


def fit_lightgbm(
    X: np.ndarray,
    y: np.ndarray,
    params: TrainParams,
    seed: int,
    sample_weight: np.ndarray | None = None,
) -> lgb.LGBMClassifier:
    """A gradient-boosted classifier of P(y=1 | x)."""
    model = lgb.LGBMClassifier(
        **asdict(params), subsample_freq=1, random_state=seed, n_jobs=1, verbose=-1
    )
    model.fit(X, y, sample_weight=sample_weight)
    return model


def fit_lightgbm_regressor(
    X: np.ndarray, y: np.ndarray, params: TrainParams, seed: int
) -> lgb.LGBMRegressor:
    """A gradient-boosted regressor of E[y | x] (squared error)."""
    model = lgb.LGBMRegressor(
        **asdict(params), subsample_freq=1, random_state=seed, n_jobs=1, verbose=-1
    )
    model.fit(X, y)
    return model


def calibration_table(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Deciles of predicted probability: mean predicted vs observed rate."""
    order = np.argsort(p, kind="stable")
    out = []
    for i, chunk in enumerate(np.array_split(order, bins)):
        if len(chunk):
            out.append(
                {
                    "decile": i + 1,
                    "n": int(len(chunk)),
                    "mean_predicted": round(float(p[chunk].mean()), 5),
                    "observed": round(float(y[chunk].mean()), 5),
                }
            )
    return out


def safe_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC AUC, or None when only one class is present."""
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None


def holdout_split(n: int, seed: int, share: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Random train/held-out row indices."""
    perm = np.random.default_rng([seed, 21]).permutation(n)
    cut = int(n * (1.0 - share))
    return perm[:cut], perm[cut:]


def train_propensity(
    rows: Any,
    model_dir: Path | str,
    params: TrainParams,
    seed: int,
    set_current: bool = True,
    version: str | None = None,
) -> dict[str, Any]:
    """Fit, export, check and write one propensity model version; returns its card."""
    if len(rows) < 50 or len(np.unique(rows.y)) < 2:
        raise ValueError(f"need at least 50 rows with both outcomes to train, have {len(rows)}")
    t0 = time.perf_counter()
    train_idx, test_idx = holdout_split(len(rows), seed)
    log.info("fitting LightGBM on %d rows (%d held out)", len(train_idx), len(test_idx))
    model = fit_lightgbm(rows.X[train_idx], rows.y[train_idx], params, seed)
    log.info("exporting to ONNX and checking parity")
    onnx_bytes = to_onnx(model)
    X_test, y_test = rows.X[test_idx], rows.y[test_idx]
    gap = parity_gap(model, onnx_bytes, X_test)
    if gap > PARITY_TOLERANCE:
        raise ParityError(
            f"ONNX differs from LightGBM by {gap:.3g} > {PARITY_TOLERANCE} on held-out rows"
        )
    p_test = onnx_predict(onnx_bytes, X_test)
    version = version or new_version("prop", onnx_bytes)
    card: dict[str, Any] = {
        "version": version,
        "kind": "propensity",
        "target": "P(coupon redeemed within its validity window)",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": rows.source,
        "feature_names": list(FEATURE_NAMES),
        "input": {"name": "input", "dtype": "float32", "shape": [None, N_FEATURES]},
        "output": {"name": "probabilities", "column": 1},
        "files": {"model": "model.onnx"},
        "algorithm": "lightgbm.LGBMClassifier",
        "params": asdict(params),
        "seed": seed,
        "training_rows": int(len(train_idx)),
        "heldout_rows": int(len(test_idx)),
        "base_rate": round(float(rows.y.mean()), 5),
        "auc": _round(safe_auc(y_test, p_test)),
        "calibration": calibration_table(p_test, y_test),
        "max_parity_gap": gap,
        "parity_tolerance": PARITY_TOLERANCE,
        "onnx_bytes": len(onnx_bytes),
    }
    if rows.p_true is not None:
        # Simulator only: how close the model gets to the hidden truth on the same held-out rows.
        p_true = rows.p_true[test_idx]
        card["auc_truth_as_score"] = _round(safe_auc(y_test, p_true))
        card["corr_with_truth"] = round(float(np.corrcoef(p_test, p_true)[0, 1]), 4)
    write_version(model_dir, version, {"model.onnx": onnx_bytes}, card, set_current)
    log.info(
        "wrote model %s (AUC %s, parity gap %.2g) in %.1fs",
        version,
        card["auc"],
        gap,
        time.perf_counter() - t0,
    )
    return card


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tenin model train", description=__doc__)
    ap.add_argument(
        "--from", dest="source", choices=["simulator", "decision-log"], default="simulator"
    )
    ap.add_argument("--kind", choices=["propensity", "uplift"], default="propensity")
    ap.add_argument(
        "--rows",
        type=int,
        default=None,
        help="simulated rows (default 200,000; uplift 1,000,000: its signal is faint)",
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--trees", type=int, default=None, help="boosting rounds (default 200; uplift 100)"
    )
    ap.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help=f"default {DEFAULT_MODEL_DIR} (uplift: models/uplift)",
    )
    ap.add_argument("--database-url", default=None, help="decision-log source: SQLAlchemy URL")
    ap.add_argument(
        "--schema", default=None, help="decision-log schema (Postgres: campaign_engine)"
    )
    ap.add_argument("--no-set-current", action="store_true", help="write the version, keep CURRENT")
    ap.add_argument("--out", type=Path, default=None, help="also write the model card here")
    return ap


def train_main(argv: list[str]) -> int:
    """Entry point for `tenin model train`; returns a process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.kind == "uplift":
        from services.campaign_engine.modeling.uplift import UPLIFT_PARAMS, train_uplift_main

        args.rows = args.rows or 1_000_000
        return train_uplift_main(args, replace(UPLIFT_PARAMS, n_estimators=args.trees or 100))
    args.rows = args.rows or 200_000
    params = TrainParams(n_estimators=args.trees or TrainParams.n_estimators)
    from services.campaign_engine.modeling import dataset

    if args.source == "simulator":
        log.info("simulating %d training rows (seed %d)", args.rows, args.seed)
        rows = dataset.simulated_rows(args.rows, args.seed)
    else:
        if not args.database_url:
            log.error("--from decision-log needs --database-url")
            return 2
        from sqlalchemy import create_engine

        engine = create_engine(args.database_url)
        with engine.connect() as conn:
            rows = dataset.rows_from_decision_log(conn, args.schema)
        log.info("read %d labelled decisions from the log", len(rows))
    try:
        card = train_propensity(
            rows,
            args.model_dir or DEFAULT_MODEL_DIR,
            params,
            args.seed,
            set_current=not args.no_set_current,
        )
    except (ValueError, ParityError) as exc:
        log.error("training failed: %s", exc)
        return 1
    summary = {k: card[k] for k in ("version", "training_rows", "auc", "max_parity_gap")}
    print(json.dumps(summary))
    if args.out:
        args.out.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return 0
