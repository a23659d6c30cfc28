"""`tenin model train`: fit LightGBM, export to ONNX, check parity, write a versioned artifact + card."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.metrics import roc_auc_score

from services.campaign_engine.modeling import artifacts
from services.campaign_engine.modeling.dataset import TrainingRows
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
    X: np.ndarray,
    y: np.ndarray,
    params: TrainParams,
    seed: int,
    sample_weight: np.ndarray | None = None,
) -> lgb.LGBMRegressor:
    """A gradient-boosted regressor of E[y | x] (squared error), optionally weighted."""
    model = lgb.LGBMRegressor(
        **asdict(params), subsample_freq=1, random_state=seed, n_jobs=1, verbose=-1
    )
    model.fit(X, y, sample_weight=sample_weight)
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
    rows: TrainingRows,
    model_dir: Path | str,
    params: TrainParams,
    seed: int,
    set_current: bool = True,
) -> dict[str, Any]:
    """Fit, export, check and write one propensity model version; returns its card."""
    if len(rows) < 50 or len(np.unique(rows.y)) < 2:
        raise ValueError(f"need at least 50 rows with both outcomes to train, have {len(rows)}")
    t0 = time.perf_counter()
    train_idx, test_idx = holdout_split(len(rows), seed)
    log.info("fitting LightGBM on %d rows (%d held out)", len(train_idx), len(test_idx))
    model = fit_lightgbm(rows.X[train_idx], rows.y[train_idx], params, seed)
    log.info("exporting to ONNX and checking parity")
    X_test, y_test = rows.X[test_idx], rows.y[test_idx]
    export = artifacts.checked_export(model, X_test)
    onnx_bytes, gap, p_test = export.onnx, export.gap, export.predictions
    version = artifacts.new_version("prop", onnx_bytes)
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
        "parity_tolerance": artifacts.PARITY_TOLERANCE,
        "onnx_bytes": len(onnx_bytes),
    }
    if rows.p_true is not None:
        # Simulator only: how close the model gets to the hidden truth on the same held-out rows.
        p_true = rows.p_true[test_idx]
        card["auc_truth_as_score"] = _round(safe_auc(y_test, p_true))
        card["corr_with_truth"] = round(float(np.corrcoef(p_test, p_true)[0, 1]), 4)
    artifacts.write_version(model_dir, version, {"model.onnx": onnx_bytes}, card, set_current)
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
